# SPDX-License-Identifier: Apache-2.0
# Checks one JSON document of an image against the OCI image-spec (v1.1) or Docker's Image
# Manifest V2 Schema 2 and image config:
#
#     jq -r --arg kind KIND -f tests/oci-check.jq FILE
#     jq -n -r -f tests/oci-check.jq --rawfile doc0 FILE0 [--rawfile doc1 FILE1]... \
#             --args KIND0 LABEL0 [KIND1 LABEL1]...
#
# The second form checks many documents in one run, each on its own: jq reads the files it is
# given as one stream, where a document that ends without a newline runs into the next.
#
# KIND is one of
#   oci-layout            the oci-layout file of an image layout
#   index                 an OCI image index (index.json)
#   manifest              an OCI image manifest (an image, not an artifact: its config is an
#                         OCI image config and its layers have the image layer types)
#   config                an OCI image config
#   descriptor            one OCI content descriptor
#   docker-manifest       a Docker Image Manifest V2, Schema 2
#   docker-config         a Docker image config (application/vnd.docker.container.image.v1+json)
#   docker-archive        the manifest.json of a docker-archive (docker save) tarball
#   docker-repositories   the repositories file of a docker-archive
#
# It prints one line per violation, "PATH: RULE" (in the second form "LABEL: PATH: RULE"), and
# nothing for a valid document. Unknown
# members are allowed everywhere (the spec tells implementations to ignore them); known ones
# are checked wherever they appear, docker's Healthcheck, OnBuild and Shell included. Besides
# every MUST, three portability SHOULDs are enforced: manifests and indexes say their
# mediaType, and an image manifest's config and layers use the image types. Cross-document
# rules (digests of blobs, layers against diff_ids) are left to the callers in tests/lib.sh.

def path_str:
  map(if type == "number" then "[\(.)]"
      elif test("^[A-Za-z_][A-Za-z0-9_]*$") then ".\(.)"
      else "[\(tojson)]" end)
  | join("") | if startswith(".") then . else "." + . end;

# Checks work on nodes {p: PATH, v: VALUE} and print violations.
def bad(msg): "\(.p | path_str): \(msg)";
def at($k): {p: (.p + [$k]), v: .v[$k]};
def is_int: (.v | type) == "number" and .v == (.v | floor);
def desc:
  if is_int then "an integer"
  else {"string": "a string", "object": "an object", "array": "an array", "boolean": "a boolean",
        "null": "null", "number": "a fractional number"}[.v | type] end;
def got: .v | tojson | if length > 80 then .[0:77] + "..." else . end;

def str(f): if (.v | type) == "string" then f else bad("must be a string, not \(desc)") end;
def str: str(empty);
def obj(f): if (.v | type) == "object" then f else bad("must be an object, not \(desc)") end;
def arr(f): if (.v | type) == "array" then f else bad("must be an array, not \(desc)") end;
def bool: if (.v | type) == "boolean" then empty else bad("must be a boolean, not \(desc)") end;
def int: if is_int then empty else bad("must be an integer, not \(desc)") end;
def nullable(f): if .v == null then empty else f end;
def each(f): . as $n | range(0; .v | length) as $i | $n | at($i) | f;
def members(f): . as $n | (.v | keys_unsorted[]) as $k | $n | at($k) | f;
def req($k; f): if .v | has($k) then at($k) | f else {p: (.p + [$k])} | bad("is required") end;
def opt($k; f): if .v | has($k) then at($k) | f else empty end;
def strv: arr(each(str));
def equals($x): if .v == $x then empty else bad("must be \($x | tojson), not \(got)") end;
def oneof($set; what): str(if .v | IN($set[]) then empty else bad("\(got) is not \(what)") end);
def matches($re; what): str(if .v | test($re) then empty else bad("\(got) is not \(what)") end);
def nonempty: str(if .v == "" then bad("must not be empty") else empty end);
def key_nonempty: if .p[-1] == "" then bad("keys must not be empty") else empty end;

# RFC 3339 section 5.6 date-time, with the ranges of each field.
def rfc3339:
  str((.v | [capture("^(?<y>[0-9]{4})-(?<mo>[0-9]{2})-(?<d>[0-9]{2})[Tt](?<h>[0-9]{2}):(?<mi>[0-9]{2}):(?<s>[0-9]{2})(\\.[0-9]+)?([Zz]|[+-](?<oh>[0-9]{2}):(?<om>[0-9]{2}))$")][0]) as $c
      | if $c == null then bad("\(got) is not an RFC 3339 date-time")
        else ($c | with_entries(.value |= (if . == null then 0 else tonumber end))) as $n
          | ($n.y % 4 == 0 and ($n.y % 100 != 0 or $n.y % 400 == 0)) as $leap
          | ([31, (if $leap then 29 else 28 end), 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][$n.mo - 1]) as $mdays
          | if $n.mo < 1 or $n.mo > 12 or $n.d < 1 or $n.d > $mdays or $n.h > 23 or $n.mi > 59
               or $n.s > 60 or $n.oh > 23 or $n.om > 59
            then bad("\(got) is not an RFC 3339 date-time (a field is out of range)")
            else empty end
        end);

# RFC 6838 section 4.2 type/subtype names, as the image-spec's schema has them.
def mediatype(f):
  str(if .v | test("^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
      then f else bad("\(got) is not an RFC 6838 media type") end);
def mediatype: mediatype(empty);

# descriptor.md: the digest grammar, and the encodings of the registered algorithms.
def digest:
  str(if .v | test("^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$") | not then
        bad("\(got) does not match the digest grammar algorithm:encoded")
      elif (.v | startswith("sha256:")) and (.v | test("^sha256:[a-f0-9]{64}$") | not) then
        bad("\(got): a sha256 digest is 64 lowercase hex digits")
      elif (.v | startswith("sha512:")) and (.v | test("^sha512:[a-f0-9]{128}$") | not) then
        bad("\(got): a sha512 digest is 128 lowercase hex digits")
      else empty end);
def size:
  if is_int | not then bad("must be an integer, not \(desc)")
  elif .v < 0 then bad("must be >= 0, not \(.v)")
  elif .v > 9223372036854775807 then bad("must fit in an int64")
  else empty end;
def uri:
  matches("^[A-Za-z][A-Za-z0-9+.-]*:([A-Za-z0-9._~:/?#@!$&'()*+,;=\\[\\]-]|%[0-9A-Fa-f]{2})*$";
          "an RFC 3986 URI");
def base64:
  str(if (.v | length) % 4 == 0 and (.v | test("^[A-Za-z0-9+/]*={0,2}$")) then empty
      else bad("is not RFC 4648 base64") end);

# annotations.md: ref.name's grammar.
def refname:
  matches("^[A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*(/[A-Za-z0-9]+(([-._:@+]|--)[A-Za-z0-9]+)*)*$";
          "a reference name by the grammar of org.opencontainers.image.ref.name");
def annotations:
  obj(members(key_nonempty,
              (.p[-1] as $k
               | if $k == "org.opencontainers.image.created" then rfc3339
                 elif $k == "org.opencontainers.image.ref.name" then refname
                 elif $k == "org.opencontainers.image.base.digest" then digest
                 else str end)));

def platform:
  obj(req("architecture"; nonempty), req("os"; nonempty), opt("os.version"; str),
      opt("os.features"; strv), opt("variant"; str), opt("features"; strv));

# A descriptor; mt further checks its mediaType.
def descriptor(mt):
  obj(req("mediaType"; mediatype(mt)), req("digest"; digest), req("size"; size),
      opt("urls"; arr(each(uri))), opt("annotations"; annotations), opt("data"; base64),
      opt("artifactType"; mediatype), opt("platform"; platform));
def descriptor: descriptor(empty);

def schema2: if is_int and .v == 2 then empty else bad("must be the integer 2, not \(got)") end;
def own_mediatype($mt):
  if .v | has("mediaType") then at("mediaType") | equals($mt)
  else {p: (.p + ["mediaType"])} | bad("SHOULD be set, to \($mt | tojson)") end;

def oci_layer_types:
  ["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
   "application/vnd.oci.image.layer.v1.tar+zstd",
   "application/vnd.oci.image.layer.nondistributable.v1.tar",
   "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
   "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"];
# The schema 2 spec's two, and the uncompressed forms that distribution and
# containers/image define next to them. There is no zstd layer type in schema 2.
def docker_layer_types:
  ["application/vnd.docker.image.rootfs.diff.tar.gzip",
   "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
   "application/vnd.docker.image.rootfs.diff.tar",
   "application/vnd.docker.image.rootfs.foreign.diff.tar"];

def oci_layout: obj(req("imageLayoutVersion"; equals("1.0.0")));

def index:
  obj(req("schemaVersion"; schema2), own_mediatype("application/vnd.oci.image.index.v1+json"),
      opt("artifactType"; mediatype), req("manifests"; arr(each(descriptor))),
      opt("subject"; descriptor), opt("annotations"; annotations));

def manifest:
  obj(req("schemaVersion"; schema2), own_mediatype("application/vnd.oci.image.manifest.v1+json"),
      opt("artifactType"; mediatype),
      req("config"; descriptor(oneof(["application/vnd.oci.image.config.v1+json"];
                                     "the OCI image config type"))),
      req("layers"; arr(each(descriptor(oneof(oci_layer_types; "an OCI image layer type"))))),
      opt("subject"; descriptor), opt("annotations"; annotations));

def docker_manifest:
  obj(req("schemaVersion"; schema2),
      req("mediaType"; equals("application/vnd.docker.distribution.manifest.v2+json")),
      req("config"; descriptor(oneof(["application/vnd.docker.container.image.v1+json"];
                                     "docker's image config type"))),
      req("layers"; arr(each(descriptor(oneof(docker_layer_types; "a docker schema 2 layer type"))))),
      opt("annotations"; annotations));

# ---- image configs ----

def env_entry: str(if .v | test("^[^=]+=") then empty else bad("\(got) is not VARNAME=VARVALUE") end);
# map[string]struct{} in Go: every value is {}.
def empty_set(key_check):
  obj(members(key_nonempty, key_check,
              obj(if .v == {} then empty else bad("must be {}, not \(got)") end)));
def port_key:
  .p[-1] as $k
  | if ($k | test("^[0-9]{1,5}(/(tcp|udp|sctp))?$")) and ($k | split("/")[0] | tonumber) <= 65535
    then empty else bad("the key is not port/tcp, port/udp or port") end;
def string_map: obj(members(key_nonempty, str));
def signal:
  matches("^((SIG)?[A-Z][A-Z0-9]*([+-][0-9]+)?|[0-9]+)$"; "a signal name (SIGNAME) or number");
# Docker's durations are nanoseconds, 0 (inherit) or at least 1 ms.
def duration:
  if is_int | not then bad("must be an integer (nanoseconds), not \(desc)")
  elif .v < 0 or (.v > 0 and .v < 1000000) then bad("must be 0 or at least 1000000 (1 ms), not \(.v)")
  else empty end;
def healthcheck:
  obj(opt("Test";
          arr(each(str),
              (.v as $t
               | if $t == [] or ($t | map(type == "string") | all | not) then empty
                 elif $t[0] == "NONE" then (if ($t | length) == 1 then empty
                                            else bad("[\"NONE\"] takes no arguments") end)
                 elif $t[0] == "CMD" or $t[0] == "CMD-SHELL" then
                   (if ($t | length) >= 2 then empty else bad("\($t[0]) needs a command") end)
                 else bad("must start with NONE, CMD or CMD-SHELL, not \($t[0] | tojson)") end))),
      opt("Interval"; duration), opt("Timeout"; duration), opt("StartPeriod"; duration),
      opt("StartInterval"; duration),
      opt("Retries"; if is_int and .v >= 0 then empty else bad("must be an integer >= 0, not \(got)") end));

# config.config; $docker allows the nulls that docker's Go encoder writes for empty fields.
def run_config($docker):
  def maybe_null(f): if $docker then nullable(f) else f end;
  obj(opt("User"; str), opt("ExposedPorts"; maybe_null(empty_set(port_key))),
      opt("Env"; maybe_null(arr(each(env_entry)))), opt("Entrypoint"; nullable(strv)),
      opt("Cmd"; nullable(strv)), opt("Volumes"; nullable(empty_set(empty))),
      opt("WorkingDir"; str), opt("Labels"; nullable(string_map)),
      opt("StopSignal"; maybe_null(signal)), opt("ArgsEscaped"; bool),
      opt("Memory"; int), opt("MemorySwap"; int), opt("CpuShares"; int),
      opt("Healthcheck"; nullable(healthcheck)), opt("OnBuild"; nullable(strv)),
      opt("Shell"; nullable(arr(each(str), (if .v == [] then bad("must not be empty") else empty end)))),
      opt("StopTimeout"; nullable(int)),
      opt("Hostname"; str), opt("Domainname"; str), opt("Image"; str),
      opt("AttachStdin"; bool), opt("AttachStdout"; bool), opt("AttachStderr"; bool),
      opt("Tty"; bool), opt("OpenStdin"; bool), opt("StdinOnce"; bool));

def history_entry:
  obj(opt("created"; rfc3339), opt("author"; str), opt("created_by"; str), opt("comment"; str),
      opt("empty_layer"; bool));

# The history entries that are not empty_layer are the layers, in order.
def history_matches_layers:
  (.v.history | type) as $ht
  | (.v.rootfs | if type == "object" then .diff_ids else null end | type) as $dt
  | if $ht == "array" and $dt == "array" and (.v.history | length) > 0
       and (.v.history | map(type == "object") | all) then
      (.v.history | map(select(.empty_layer != true)) | length) as $n
      | (.v.rootfs.diff_ids | length) as $d
      | if $n == $d then empty
        else {p: ["history"]}
             | bad("\($n) entries without empty_layer, but rootfs.diff_ids has \($d) layers")
        end
    else empty end;

def image_config($docker):
  obj(opt("created"; rfc3339), opt("author"; str), req("architecture"; nonempty),
      req("os"; nonempty), opt("os.version"; str), opt("os.features"; strv), opt("variant"; str),
      opt("config"; if $docker then nullable(run_config(true)) else run_config(false) end),
      req("rootfs"; obj(req("type"; equals("layers")), req("diff_ids"; arr(each(digest))))),
      opt("history"; arr(each(history_entry))),
      history_matches_layers,
      (if $docker then
         opt("container_config"; nullable(run_config(true))), opt("docker_version"; str),
         opt("container"; str), opt("id"; str), opt("parent"; str), opt("Size"; int)
       else empty end));

# ---- docker-archive ----

def relpath:
  str(if .v == "" or (.v | startswith("/")) or (.v | split("/") | any(. == ".."))
      then bad("\(got) is not a relative path inside the archive") else empty end);
# distribution/reference: [domain[:port]/]path-component(/path-component)*
def docker_name_re:
  "(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(\\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(:[0-9]+)?/)?[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*";
def docker_tag_re: "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
def docker_tagged:
  matches("^\(docker_name_re):\(docker_tag_re)$"; "a docker reference NAME:TAG");
def docker_archive:
  arr((if .v == [] then bad("must list at least one image") else empty end),
      each(obj(req("Config"; relpath), opt("RepoTags"; nullable(arr(each(docker_tagged)))),
               req("Layers"; arr(each(relpath))), opt("Parent"; str),
               opt("LayerSources"; nullable(obj(members(
                 (.p[-1] as $k | {p: .p, v: $k} | digest), descriptor)))))));
def docker_repositories:
  obj(members((.p[-1] as $k
               | if $k | test("^\(docker_name_re)$") then empty
                 else bad("the key is not a docker repository name") end),
              obj(members((.p[-1] as $k
                           | if $k | test("^\(docker_tag_re)$") then empty
                             else bad("the key is not a docker tag") end),
                          matches("^[a-f0-9]{64}$"; "a 64-hex-digit id")))));

def check($kind):
  {p: [], v: .}
  | if $kind == "oci-layout" then oci_layout
    elif $kind == "index" then index
    elif $kind == "manifest" then manifest
    elif $kind == "config" then image_config(false)
    elif $kind == "descriptor" then descriptor
    elif $kind == "docker-manifest" then docker_manifest
    elif $kind == "docker-config" then image_config(true)
    elif $kind == "docker-archive" then docker_archive
    elif $kind == "docker-repositories" then docker_repositories
    else error("oci-check.jq: unknown kind '\($kind)'") end;

if $ARGS.named | has("doc0") then
  range(0; $ARGS.positional | length / 2) as $i
  | $ARGS.positional[2 * $i] as $k
  | $ARGS.positional[2 * $i + 1] as $name
  | ($ARGS.named["doc\($i)"] | try {doc: fromjson} catch {error: .}) as $r
  | if $r | has("error") then "\($name): .: is not one JSON document: \($r.error)"
    else $r.doc | check($k) | "\($name): \(.)" end
else check($ARGS.named.kind // "") end

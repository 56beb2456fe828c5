# Docker: "The SHELL instruction allows the default shell used for the shell form of
# commands to be overridden" -- shell-form CMD, ENTRYPOINT and HEALTHCHECK CMD-SHELL run
# under it (BuildKit's dispatchCmd/dispatchEntrypoint prepend the stage's shell). buildah
# 1.28 keeps "/bin/sh -c" for CMD and ENTRYPOINT; HEALTHCHECK CMD-SHELL is only a string.
.Cmd = ["/bin/bash", "-eo", "pipefail", "-c", "echo hello from bash"]
| .Entrypoint = ["/bin/bash", "-eo", "pipefail", "-c", "exec /bin/entry"]

# Neither busybox nor the base has a way to set security.capability: the host's setcap and
# the libraries it loads go into tools/, which the Containerfile binds for one step, so
# that they never become part of the image.
set -eu
setcap=$(command -v setcap || true)
if [ -z "$setcap" ]; then
        echo "setcap is not installed on this machine (Debian package libcap2-bin)" >&2
        exit 75
fi
mkdir tools
cp "$setcap" tools/setcap
loader=
for lib in $(ldd "$setcap" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        case $lib in
        */ld-linux*) loader=$lib ;;
        *) cp -L "$lib" tools/ ;;
        esac
done
[ -n "$loader" ] || { echo "no dynamic loader found for $setcap" >&2; exit 1; }
cp -L "$loader" tools/ld.so

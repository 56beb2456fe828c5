# docker removes every directory it made for a mount point that the step left empty, the
# mount point's parents included (BuildKit's MountStubsCleaner, recursive for Dockerfile
# builds). buildah 1.28 removes the mount point itself but keeps the parents it created:
# /usr/local and /usr/local/share for the bind at /usr/local/share/mnt.
\|^\./usr/local d 755	0:0$|d
\|^\./usr/local/share d 755	0:0$|d

# docker removes every directory it made for a mount point that the step left empty, the
# mount point's parents included (BuildKit's MountStubsCleaner, recursive for Dockerfile
# builds). buildah 1.28 removes the mount point itself but keeps the parents it created:
# /deep and /deep/er for the tmpfs at /deep/er/mnt.
\|^\./deep d 755	0:0$|d
\|^\./deep/er d 755	0:0$|d

# The first RUN writes only into its cache mount. docker removes /var/cache, the parent it
# made for the mount point (see docker-tree.sed), so the step's diff is empty and commits
# no layer (its history entry says empty_layer). buildah 1.28 keeps /var/cache and commits
# a layer that holds it, one more than docker's.
.Layers -= 1

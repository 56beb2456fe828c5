# docker commits a layer for each WORKDIR that creates its directory (see docker-tree.sed):
# here /app, /app/sub/dir and /srv/www, three layers; /home/user and / exist and add none.
# buildah 1.28 commits none for WORKDIR, making the directory inside the next RUN's layer.
.Layers += 3

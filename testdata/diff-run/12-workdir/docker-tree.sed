# docker makes the directory of a WORKDIR that does not exist in the WORKDIR step itself
# (BuildKit's dispatchWorkdir adds an llb.Mkdir with parents; the classic builder's
# dispatchWorkdir creates it in the container it commits), so the last step leaves /srv/www
# in the image. buildah 1.28 only makes a working directory when a later RUN needs it.
/^\.\/sys d /i\
./srv d 755\t0:0\
./srv/www d 755\t0:0

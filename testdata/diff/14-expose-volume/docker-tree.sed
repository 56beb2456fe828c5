# docker's VOLUME changes only the config (BuildKit's dispatchVolume and the classic
# builder both commit no layer). buildah 1.28 creates the directories of a VOLUME that is
# the last instruction (and only then: a LABEL after it and they are gone), so drop them.
\|^\./one d 755	0:0$|d
\|^\./two d 755	0:0$|d

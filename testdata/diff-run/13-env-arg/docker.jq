# docker sets a variable that the config already has where it is: ENV PATH=/opt/bin:$PATH
# keeps PATH first, where the base image has it (BuildKit's addEnv and the classic
# builder's dispatchEnv both replace the entry in place, and append only a new name).
# buildah 1.28 drops the base image's PATH and appends the new value, after E, F and G.
.Env |= ([.[] | select(startswith("PATH="))] + [.[] | select(startswith("PATH=") | not)])

# Applied to every buildah listing of this test. buildah 1.28 leaves the mount points of
# its RUN steps in the image: empty files (mode 0755) for the /etc/hostname, /etc/hosts and
# /etc/resolv.conf it binds, and /run, where it binds /run/.containerenv. docker leaves
# none: BuildKit's runc executor removes the stubs it created once the step is over
# (executor/stubs.go, MountStubsCleaner), and the classic builder kept them in the
# container's init layer, which a commit leaves out. No case writes below /run or to
# these files, so only the stubs are dropped; kiln's listing is never corrected.
\|^\./etc/hostname f 755	0:0 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$|d
\|^\./etc/hosts f 755	0:0 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$|d
\|^\./etc/resolv\.conf f 755	0:0 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$|d
\|^\./run d 755	0:0$|d

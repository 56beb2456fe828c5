# git keeps only the executable bit: the modes the case copies are set here.
chmod 0644 data/in.txt data/sub/n.txt
chmod 0755 data/tool.sh data data/sub

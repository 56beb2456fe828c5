# Tarballs with owners and modes git cannot keep.
set -e
mkdir -p t/tree/sub t/empty
echo one >t/tree/one
echo two >t/tree/sub/two
ln -s one t/tree/link
chmod 0750 t/tree/sub
chmod 0600 t/tree/one
chown -R 1000:1000 t/tree/sub
tar --numeric-owner -C t -czf files.tar.gz tree empty
tar --numeric-owner -C t -cf plain.tar tree
rm -rf t

#!/bin/bash
# Backup of a Zhixing installation: the database (pg_dump, custom format), the uploaded
# documents and the audit chain head at the time. Run by zhixing-backup.service (nightly, from
# zhixing-backup.timer) with the installation's environment. docs/production.md, "Backups",
# has the restore.
set -euo pipefail

BACKUP_DIR=${BACKUP_DIR:-/var/backups/zhixing}
KEEP_DAYS=${KEEP_DAYS:-14}
ZHIXING=${ZHIXING:-/opt/zhixing/bin/zhixing}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
dir="$BACKUP_DIR/$stamp"
mkdir -p "$dir"
# libpq does not know SQLAlchemy's driver suffix.
url="${ZHIXING_DATABASE_URL/postgresql+psycopg:/postgresql:}"

# The chain head before the dump: every record up to it is in the dump, and a restore must
# verify and contain it. Also catches tampering since the last backup (exit 1 stops here).
"$ZHIXING" audit verify | tee "$dir/audit-head.txt"
# One consistent snapshot of the whole database, compressed, restorable table by table.
pg_dump --format=custom --compress=6 --file="$dir/zhixing.dump" "$url"
# Documents are content-addressed and never change: hard links to the previous backup's copies
# cost no space.
if [ -d "$ZHIXING_DATA_DIR/documents" ]; then
    rsync -a --link-dest="$BACKUP_DIR/latest/documents" \
        "$ZHIXING_DATA_DIR/documents/" "$dir/documents/"
fi
sha256sum "$dir/zhixing.dump" > "$dir/SHA256SUMS"
ln -sfn "$dir" "$BACKUP_DIR/latest"
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name '20*' -mtime +"$KEEP_DAYS" \
    -exec rm -rf {} +
echo "backup written to $dir"

#!/usr/bin/env bash
# Mount PostgreSQL's data volume (its own encrypted EBS volume, kept when the instance goes) at the
# given mount point. Run by cloud-init at first boot; every later boot mounts it from /etc/fstab by
# file-system label, and docker.service waits for that mount (RequiresMountsFor), so PostgreSQL can
# never start on an empty directory of the root volume. A blank volume is formatted; a volume that
# already has a file system (a restored snapshot) is mounted as it is.
set -euo pipefail

volume_id="${1:?usage: rtep-data-volume VOLUME_ID MOUNT_POINT}"
mount_point="${2:?usage: rtep-data-volume VOLUME_ID MOUNT_POINT}"
label=rtep-postgres
# Nitro instances show an EBS volume as an NVMe device whose serial is the volume id without '-'.
device="/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volume_id//-/}"

# Terraform attaches the volume just after the instance starts: wait for udev to announce it.
if ! udevadm wait --timeout=600 "$device"; then
    echo "rtep-data-volume: $volume_id not attached after 10 minutes ($device missing):" \
        "check aws_volume_attachment.postgres and that instance_type is a Nitro type (t3, m5, t4g...)" >&2
    exit 1
fi

if ! blkid "$device" > /dev/null; then
    mkfs.ext4 -q -L "$label" "$device"
fi
install -d -m 0755 "$mount_point"
if ! grep -q "^LABEL=$label " /etc/fstab; then
    echo "LABEL=$label $mount_point ext4 defaults,nofail,x-systemd.device-timeout=10min 0 2" >> /etc/fstab
fi
systemctl daemon-reload
if ! mountpoint -q "$mount_point"; then
    mount "$mount_point"
fi
echo "rtep-data-volume: $volume_id mounted at $mount_point"

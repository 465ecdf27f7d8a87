#!/bin/sh
# Prepares a runtime image, as both Dockerfiles here need it: tini (from apt only where the base lacks it: the local
# Debian bases have it, so apt is used only on an upstream image), the unprivileged user and group 10001 named $1, and
# the data directories after it, owned by that user.
#
#   RUN --mount=type=bind,source=deploy/images/prepare-runtime.sh,target=/prepare-runtime.sh \
#       sh /prepare-runtime.sh app /var/lib/faust /var/lib/transcripts
set -eu
user="$1"
shift
if ! command -v tini >/dev/null; then
  apt-get update
  apt-get install -y --no-install-recommends tini
  rm -rf /var/lib/apt/lists/*
fi
groupadd --system --gid 10001 "$user"
useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin "$user"
install -d -o 10001 -g 10001 "$@"

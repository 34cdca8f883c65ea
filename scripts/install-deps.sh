#!/usr/bin/env bash
# Installs tranq's build and run dependencies from Debian (run as root on Debian 12).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "apt-get update failed; trying the installed package lists" >&2
apt-get install -y -qq cmake ninja-build g++ libeigen3-dev libgtest-dev libbenchmark-dev \
  zlib1g-dev libfmt-dev nlohmann-json3-dev libcli11-dev libjpeg62-turbo-dev \
  dataset-fashion-mnist >/dev/null

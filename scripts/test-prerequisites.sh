#!/usr/bin/env bash
# Runs before `npm test` (the "pretest" script): makes sure what the test suite talks to for real is
# there. Starts PostgreSQL and Redis when they are down and installs Debian's python3-cryptography
# (the reference Fernet implementation the interop tests compare against) and Debian's chromium (the
# real browser test/browser.e2e-spec.ts drives with playwright-core) when they are missing.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have pg_isready && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "test-prerequisites: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if have redis-cli && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "test-prerequisites: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi

if ! /usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1; then
  echo "test-prerequisites: installing python3-cryptography (Debian package)"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-cryptography >/dev/null
  fi
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "test-prerequisites: installing chromium (Debian package)"
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

# Builds (once, cached) the demo image: a Debian/Ubuntu rootfs with python3 made by debootstrap
# from this machine's own apt mirror, plus a small app layer, as an OCI layout. Source this file
# and call build_python_image; it sets PYTHON_LAYOUT (an OCI layout with tag "demo").

DEMO_CACHE="${DEMO_CACHE:-/var/cache/soci-ts/demo}"

# The mirror and suite this machine's apt uses (debootstrap needs both).
apt_mirror() {
  local uri
  uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}')"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb (\[[^]]*\] )?(http|https)://' /etc/apt/sources.list | head -n1 | sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}')"
  echo "$uri"
}

build_python_image() {
  PYTHON_LAYOUT="$DEMO_CACHE/python-layout"
  # One builder at a time (the demo and the startup bench share the cache): wait for the other.
  mkdir -p "$(dirname "$DEMO_CACHE")"
  exec {lock_fd}>"$DEMO_CACHE.lock"
  flock "$lock_fd"
  if [ -f "$DEMO_CACHE/.python-image-done" ]; then flock -u "$lock_fd"; return 0; fi
  local suite mirror rootfs app
  suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
  mirror="$(apt_mirror)"
  [ -n "$mirror" ] || { echo "demo: cannot find this machine's apt mirror" >&2; return 1; }
  rootfs="$DEMO_CACHE/rootfs"
  rm -rf "$DEMO_CACHE" && mkdir -p "$DEMO_CACHE"
  echo "demo: building a $suite rootfs with python3 (debootstrap, cached in $DEMO_CACHE) ..." >&2
  debootstrap --variant=minbase --include=python3 "$suite" "$rootfs" "$mirror" >"$DEMO_CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$DEMO_CACHE/debootstrap.log" >&2; return 1; }
  rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/dev/"* 2>/dev/null || true

  app="$DEMO_CACHE/app"
  mkdir -p "$app/app"
  cat >"$app/app/main.py" <<'PY'
# A python app that imports a broad set of standard modules before it is ready.
import argparse, asyncio, base64, collections, csv, dataclasses, datetime, decimal, email.parser
import fractions, gzip, hashlib, html.parser, http.client, http.server, importlib, inspect, ipaddress
import json, logging, lzma, pathlib, pickle, random, re, shutil, sqlite3, statistics, string
import subprocess, tarfile, tempfile, textwrap, threading, typing, unittest, urllib.request, uuid
import xml.etree.ElementTree, zipfile
print("READY", flush=True)
PY
  umoci init --layout "$PYTHON_LAYOUT" >/dev/null
  umoci new --image "$PYTHON_LAYOUT:demo" >/dev/null
  umoci insert --image "$PYTHON_LAYOUT:demo" "$rootfs" / >/dev/null
  umoci insert --image "$PYTHON_LAYOUT:demo" "$app" / >/dev/null
  umoci config --image "$PYTHON_LAYOUT:demo" --config.cmd python3 --config.cmd /app/main.py >/dev/null
  umoci gc --layout "$PYTHON_LAYOUT" >/dev/null
  rm -rf "$rootfs" "$app"
  touch "$DEMO_CACHE/.python-image-done"
  flock -u "$lock_fd"
}

# Go for the test tools (sourced by scripts/test, scripts/demo, scripts/install-go-tools and
# scripts/install-containerd). containerd 2.2 and 1.7, crictl and the referrers registry are built
# from Go modules whose go.mod asks for Go 1.25; a Go from 1.21 on fetches that toolchain itself
# through the module proxy (GOTOOLCHAIN=auto, the default). Debian 12's own golang (1.19) is too
# old: install Go from go.dev (into /usr/local/go) or bookworm-backports. The demo needs no Go.

GO_NEEDED=1.25
GO_OLDEST=1.21

# find_go: puts an installed Go on PATH (also /usr/local/go and /usr/lib/go, which are not on
# root's PATH by default); fails when there is none.
find_go() {
  if ! command -v go >/dev/null 2>&1; then
    local d
    for d in /usr/local/go/bin /usr/lib/go/bin; do [ -x "$d/go" ] && PATH="$d:$PATH"; done
  fi
  command -v go >/dev/null 2>&1
}

# go_minor: the minor version of the Go on PATH (go1.26.8 -> 26).
go_minor() {
  go env GOVERSION 2>/dev/null | sed -E 's/^go1\.([0-9]+).*/\1/'
}

# go_usable: whether the Go on PATH (after find_go) can build the tools: >= GO_NEEDED, or
# >= GO_OLDEST with the toolchain download allowed.
go_usable() {
  find_go || return 1
  local minor; minor="$(go_minor)"
  [[ "$minor" =~ ^[0-9]+$ ]] || return 1
  [ "$minor" -ge "${GO_NEEDED#1.}" ] && return 0
  [ "$minor" -ge "${GO_OLDEST#1.}" ] && [ "$(go env GOTOOLCHAIN)" != local ]
}

# require_go WHO: stops with what to install when there is no usable Go.
require_go() {
  go_usable && return 0
  local have="none"
  find_go && have="$(go env GOVERSION 2>/dev/null || go version)"
  echo "$1: needs Go >= $GO_NEEDED to build its test tools (or Go >= $GO_OLDEST, which fetches" \
    "Go $GO_NEEDED through the module proxy); found: $have. Install Go from https://go.dev/dl" \
    "into /usr/local/go (Debian 12's golang package is 1.19, too old)." >&2
  exit 1
}

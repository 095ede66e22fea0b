#!/usr/bin/env bash
# Install everything mcp-codegen needs on a fresh Debian machine (run as root).
#
#   bash scripts/setup.sh
#
# Idempotent: every step is keyed on a stamp file holding the hash of its
# inputs, so a second run does (almost) nothing. Every version is pinned:
#   - system packages  : apt (runsc = Debian's gVisor; git/node/npm if missing)
#   - project venv     : .venv            <- pyproject.toml  ('.[dev,sandbox]', editable)
#   - demo server venvs: .demo/venvs/<n>  <- demo/requirements/<n>.txt (pip freeze)
#   - demo npm servers : .demo/node       <- demo/node/package{,-lock}.json (npm ci)
#   - demo data        : .demo/repo (git, fixed hashes), .demo/files,
#                        .demo/demo.sqlite and .demo/memory.jsonl (made by the servers)
#
# Env knobs: PYTHON (interpreter for the venvs, default python3, must be >= 3.11).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
DEMO="$ROOT/.demo"
SERVERS=(time git sqlite fetch)

log() { printf '[setup] %s\n' "$*" >&2; }
sha() { cat "$@" | sha256sum | cut -d' ' -f1; }
stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# --------------------------------------------------------------------------
# 1. System packages
# --------------------------------------------------------------------------
need_apt=()
command -v runsc >/dev/null 2>&1 || need_apt+=(runsc)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v "$PYTHON" >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    need_apt+=(python3-venv)
fi
if ((${#need_apt[@]})); then
    log "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
else
    log "system packages present (runsc $(dpkg-query -W -f='${Version}' runsc 2>/dev/null || echo '?'))"
fi

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' \
    || { log "need Python >= 3.11 (set PYTHON=...)"; exit 1; }
PYVER="$("$PYTHON" -c 'import sys; print(sys.version)')"

# --------------------------------------------------------------------------
# 2. Project venv
# --------------------------------------------------------------------------
key="$(sha pyproject.toml)-$PYVER"
if stamp_ok .venv/.setup-stamp "$key" && [[ -x .venv/bin/python ]]; then
    log ".venv up to date"
else
    log "installing project into .venv"
    "$PYTHON" -m venv .venv
    .venv/bin/pip install -qq -e '.[dev,sandbox]'
    printf '%s' "$key" > .venv/.setup-stamp
fi

# --------------------------------------------------------------------------
# 3. Demo Python servers, one venv each (they pin different mcp versions)
# --------------------------------------------------------------------------
mkdir -p "$DEMO/venvs"
for name in "${SERVERS[@]}"; do
    req="demo/requirements/$name.txt"
    venv="$DEMO/venvs/$name"
    key="$(sha "$req")-$PYVER"
    if stamp_ok "$venv/.setup-stamp" "$key" && [[ -x "$venv/bin/mcp-server-$name" ]]; then
        log "venv $name up to date"
        continue
    fi
    log "building venv $name from $req"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -qq -r "$req"
    printf '%s' "$key" > "$venv/.setup-stamp"
done

# --------------------------------------------------------------------------
# 4. Demo npm servers (+ inspector-cli), installed from the committed lockfile
# --------------------------------------------------------------------------
mkdir -p "$DEMO/node"
key="$(sha demo/node/package.json demo/node/package-lock.json)"
if stamp_ok "$DEMO/node/.setup-stamp" "$key" && [[ -d "$DEMO/node/node_modules" ]]; then
    log "node packages up to date"
else
    log "npm ci in .demo/node"
    cp demo/node/package.json demo/node/package-lock.json "$DEMO/node/"
    (cd "$DEMO/node" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s' "$key" > "$DEMO/node/.setup-stamp"
fi
# inspector-cli 1.0.3 bug: build/index.js tests fs.existsSync("../package.json")
# against the process cwd but import()s relative to itself, falling back to
# "../../package.json" = node_modules/@modelcontextprotocol/package.json, which
# does not exist outside the inspector monorepo; so it only runs from a cwd whose
# parent holds a package.json. This shim (same name/version, which the CLI uses
# as its clientInfo) makes it run from any cwd.
shim="$DEMO/node/node_modules/@modelcontextprotocol/package.json"
if [[ ! -f "$shim" ]]; then
    ver="$(node -p 'require(process.argv[1]).version' "$DEMO/node/node_modules/@modelcontextprotocol/inspector-cli/package.json")"
    printf '{"name": "@modelcontextprotocol/inspector-cli", "version": "%s", "private": true}\n' "$ver" > "$shim"
fi

# --------------------------------------------------------------------------
# 5. Demo data
# --------------------------------------------------------------------------
# 5a. A small git repository with reproducible commit hashes.
if [[ ! -d "$DEMO/repo/.git" ]]; then
    log "creating demo git repository .demo/repo"
    tmp="$(mktemp -d "$DEMO/repo.tmp.XXXXXX")"
    (
        cd "$tmp"
        export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
        export GIT_AUTHOR_NAME="Demo Author" GIT_AUTHOR_EMAIL="author@example.com"
        export GIT_COMMITTER_NAME="Demo Committer" GIT_COMMITTER_EMAIL="committer@example.com"
        export TZ=UTC
        g() { git -c init.defaultBranch=main -c commit.gpgsign=false -c core.autocrlf=false "$@"; }
        commit() { # date message
            export GIT_AUTHOR_DATE="$1 +0000" GIT_COMMITTER_DATE="$1 +0000"
            g add -A
            g commit -q -m "$2"
        }
        g init -q .
        printf '# Demo repository\n\nA tiny repository for the mcp-codegen demo.\n' > README.md
        commit "2024-01-01T12:00:00" "Initial commit"
        mkdir -p src
        printf 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n' > src/greet.py
        commit "2024-01-02T12:00:00" "Add greet()"
        printf '\nRun `python -c "from src.greet import greet; print(greet(\x27world\x27))"`.\n' >> README.md
        commit "2024-01-03T12:00:00" "Document usage"
    )
    chmod 755 "$tmp"
    mv "$tmp" "$DEMO/repo"
fi

# 5b. Files for the filesystem server.
if [[ ! -d "$DEMO/files" ]]; then
    log "creating .demo/files"
    mkdir -p "$DEMO/files.tmp/notes"
    printf 'Hello from the mcp-codegen demo.\n' > "$DEMO/files.tmp/hello.txt"
    printf '# Notes\n\n- first note\n- second note\n' > "$DEMO/files.tmp/notes/todo.md"
    mv "$DEMO/files.tmp" "$DEMO/files"
fi

# 5c. .demo/demo.sqlite is created by mcp-server-sqlite on first start and
#     .demo/memory.jsonl by server-memory on first write (see demo/mcp.json).

log "done"

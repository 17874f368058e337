# Shared by scripts/ci/11-*.sh: start and stop qrlp servers and helpers, Node and Python
# packages, a PostgreSQL schema per run. Source it; it defines functions only.

# npm packages into $1 (cached under target/).
install_node_packages() {
    local dir=$1
    mkdir -p "$dir"
    if [ ! -d "$dir/node_modules/standardwebhooks" ] || [ ! -d "$dir/node_modules/axios" ] \
        || [ ! -d "$dir/node_modules/express" ]; then
        (cd "$dir" && [ -f package.json ] || echo '{"private":true}' > "$dir/package.json"
         cd "$dir" && npm install --silent --no-audit --no-fund \
            axios@1 express@4 standardwebhooks@1 >/dev/null)
    fi
}

# A Python virtual environment with the PyPI standardwebhooks package, in $1.
install_python_packages() {
    local venv=$1
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -c "import standardwebhooks" 2>/dev/null \
        || "$venv/bin/pip" install --quiet --disable-pip-version-check standardwebhooks==1.0.0
}

# Waits until $1 answers 200 (at most 30 s).
wait_http() {
    local url=$1
    for _ in $(seq 1 300); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "no answer from $url" >&2
    return 1
}

# Creates a PostgreSQL schema and prints a database URL whose connections use it.
pg_schema_url() {
    local base=$1 name=$2
    psql -q "$base" -c "CREATE SCHEMA $name" >/dev/null
    case "$base" in
        *\?*) echo "${base}&options=-csearch_path%3D${name}" ;;
        *) echo "${base}?options=-csearch_path%3D${name}" ;;
    esac
}

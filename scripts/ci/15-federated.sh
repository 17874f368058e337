#!/usr/bin/env bash
# Federated learning end to end (issue 15) with the release binary and real processes: one
# server (SQLite), 5 `qrlp device agent --data` processes on loopback, each holding one
# split of the Wisconsin breast-cancer data (569 x 30; scikit-learn's copy, written as CSV
# by scripts/ci/fl_breast_cancer.py), and a held-out test split no device sees.
#  A. FedAvg, 20 rounds of logistic regression: the final global model, downloaded with
#     `qrlp fl evaluate`, reaches >= 95% accuracy on the held-out split.
#  B. DP-FedAvg, z = 1, S = 0.5, 20 rounds: the ε the server reports equals the accountant's
#     (`qrlp fl epsilon`, q = 1) for those parameters; the accuracy is printed.
#  C. One agent poisoned (sends global − 50 × its update each round): the trimmed mean
#     still reaches >= 93%.
# FL_CI_PHASES picks phases (default "A B C"; D: FedAvg with the poisoned agent, for
# contrast). Port 19510 on 127.0.0.1. Bounded: about a minute. Longer runs: scripts/fl-full.sh.
# FL_CI_SEED sets the data split and local shuffles (default 1; the held-out accuracy of a
# centralised logistic regression, printed first, varies with it from 94% to 99%).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${QRLP_BIN:?QRLP_BIN must name the release binary (.ci/run sets it)}"
SEED="${FL_CI_SEED:-1}"
ROUNDS="${FL_CI_ROUNDS:-20}"
PORT="${FL_CI_PORT:-19510}"
python=python3
if ! python3 -c 'import sklearn' 2>/dev/null; then
    venv="${CARGO_TARGET_DIR:-target}/ci-fl-sklearn"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    if ! "$venv/bin/python" -c 'import sklearn' 2>/dev/null; then
        timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check scikit-learn
    fi
    python="$venv/bin/python"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$work/server.log" "$work"/agent*.log >&2 2>/dev/null || true
    exit 1
}
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
api() { # api METHOD URL KEY [BODY]
    curl -fsS -X "$1" "$2" -H "x-api-key: $3" -H 'content-type: application/json' ${4:+-d "$4"}
}

baseline="$(timeout 120 "$python" scripts/ci/fl_breast_cancer.py "$work" 5 "$SEED" | tail -n1)"
echo "centralised logistic regression (scikit-learn) on this split: held-out accuracy $baseline"

mkdir -p "$work/server"
env QRLP_SERVER_HOST=127.0.0.1 QRLP_SERVER_PORT="$PORT" QRLP_STORAGE_DATA_DIR="$work/server" \
    QRLP_LOG_LEVEL=warn QRLP_FLEET_UPDATE_INTERVAL_SECS=5 QRLP_FLEET_DEVICE_REQUESTS_PER_MINUTE=100000 \
    "$QRLP_BIN" serve >"$work/server.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$PORT"
for _ in $(seq 100); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null || fail "the server did not start"
key="$("$QRLP_BIN" admin bootstrap --org "FL CI" --email ci@fl.example --plan enterprise \
    --data-dir "$work/server" | tail -n1)"
export QRLP_SERVER="$base" QRLP_API_KEY="$key"

# start_agent I [EXTRA...]: agent I on device I's split.
start_agent() {
    local i="$1"
    shift
    "$QRLP_BIN" device agent --dir "$work/dev$i" --data "$work/device$i.csv" \
        --seed "$((SEED * 10 + i))" --poll 0.1 "$@" >>"$work/agent$i.log" 2>&1 &
    agent_pid[$i]=$!
    pids+=($!)
}
for i in 1 2 3 4 5; do
    token="$(api POST "$base/api/v1/devices/enrollment-tokens" "$key" '{}' | json 'd["token"]')"
    "$QRLP_BIN" device enroll --server "$base" --token "$token" --dir "$work/dev$i" \
        --name "learner-$i" --type ci >/dev/null
    start_agent "$i"
done

# run_job NAME ARGS...: a job to its end; prints its JSON summary.
run_job() {
    local name="$1" round
    shift
    round="$("$QRLP_BIN" fl start --input-dim 30 --rounds "$ROUNDS" --min-participants 5 \
        --max-participants 5 --learning-rate "${FL_CI_LR:-0.1}" --epochs "${FL_CI_EPOCHS:-2}" --deadline-secs 60 "$@" | json 'd["id"]')"
    timeout 300 "$QRLP_BIN" fl watch "$round" 2>/dev/null | tail -n1 >"$work/$name.json" \
        || fail "$name: the job did not complete: $(cat "$work/$name.json")"
    cat "$work/$name.json"
}
evaluate() { # evaluate SUMMARY_FILE -> accuracy on the held-out split
    "$QRLP_BIN" fl evaluate --model "$(json 'd["latest_model_version"]' <"$1")" \
        --data "$work/test.csv" | json 'd["accuracy"]'
}
at_least() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$1" "$2"; }

PHASES="${FL_CI_PHASES:-A B C}"
phase() { case " $PHASES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if phase A; then
start=$(date +%s)
run_job fedavg --strategy fedavg >/dev/null
acc_a="$(evaluate "$work/fedavg.json")"
echo "A: FedAvg, $ROUNDS rounds, 5 devices: held-out accuracy $acc_a ($(( $(date +%s) - start )) s)"
at_least "$acc_a" 0.95 || fail "A: held-out accuracy $acc_a < 0.95"
fi

if phase B; then
start=$(date +%s)
run_job dp --strategy fedavg --dp --noise 1 --clip 0.5 >/dev/null
eps_server="$(json 'd["epsilon"]' <"$work/dp.json")"
eps_acc="$("$QRLP_BIN" fl epsilon --noise 1 --rounds "$ROUNDS" --delta 1e-5 | json 'd["epsilon"]')"
acc_b="$(evaluate "$work/dp.json")"
echo "B: DP-FedAvg z=1 S=0.5, $ROUNDS rounds: reported epsilon $eps_server (accountant $eps_acc, delta 1e-5), held-out accuracy $acc_b ($(( $(date +%s) - start )) s)"
python3 -c "import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1e-9 else 1)" \
    "$eps_server" "$eps_acc" || fail "B: reported epsilon $eps_server != accountant $eps_acc"
fi

if phase C || phase D; then
start=$(date +%s)
kill "${agent_pid[5]}"
wait "${agent_pid[5]}" 2>/dev/null || true
start_agent 5 --poison=-50
fi
if phase D; then
    # The same poisoned agent under plain FedAvg, for contrast (reported, not checked).
    run_job poisoned_fedavg --strategy fedavg >/dev/null
    echo "D: FedAvg with the same poisoned agent: held-out accuracy $(evaluate "$work/poisoned_fedavg.json")"
fi
if phase C; then
start=$(date +%s)
run_job poisoned --strategy trimmed_mean --trim-fraction 0.2 >/dev/null
acc_c="$(evaluate "$work/poisoned.json")"
echo "C: trimmed mean with one poisoned agent (x-50): held-out accuracy $acc_c ($(( $(date +%s) - start )) s)"
at_least "$acc_c" 0.93 || fail "C: held-out accuracy $acc_c < 0.93"
fi
echo "federated end to end: ok"

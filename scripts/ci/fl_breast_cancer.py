"""Writes the Wisconsin breast-cancer data set (569 x 30, scikit-learn's copy) as CSV splits
for the federated end-to-end check: a held-out test split and N device splits.

usage: fl_breast_cancer.py OUT_DIR DEVICES [SEED]
Files: OUT_DIR/test.csv, OUT_DIR/device1.csv ... deviceN.csv; columns f0..f29,label
(label 1 = benign, as scikit-learn encodes it). The shuffle is seeded; 20% is held out.
Prints, as its last line, the held-out accuracy of a centralised logistic regression
(scikit-learn, standardised, C = 1) trained on all device splits together: the baseline.
"""
import csv
import random
import sys

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(30)] + ["label"])
        for x, y in rows:
            w.writerow([repr(float(v)) for v in x] + [int(y)])


def main():
    out, devices = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    data = load_breast_cancer()
    rows = list(zip(data.data.tolist(), data.target.tolist()))
    assert len(rows) == 569 and len(rows[0][0]) == 30
    random.Random(seed).shuffle(rows)
    n_test = len(rows) // 5
    write(f"{out}/test.csv", rows[:n_test])
    train = rows[n_test:]
    for d in range(devices):
        write(f"{out}/device{d + 1}.csv", train[d::devices])
    print(f"{len(train)} training examples over {devices} devices, {n_test} held out")
    x = [r[0] for r in train]
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(x), [r[1] for r in train])
    test_x = scaler.transform([r[0] for r in rows[:n_test]])
    print(model.score(test_x, [r[1] for r in rows[:n_test]]))


if __name__ == "__main__":
    main()

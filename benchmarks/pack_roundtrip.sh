#!/usr/bin/env bash
# A teacher pack exported from one fresh clone makes a second fresh clone's full-mode teacher
# calls load instead of train. Run it after the notebooks' full mode has filled the cache:
#     bash benchmarks/pack_roundtrip.sh
# It clones this repository twice into a temporary folder, exports every model of the cache
# ($KD_CACHE_DIR, else cache/) from the first clone, imports the pack into the second with an
# empty cache, and there makes the full-mode teacher calls of notebooks 02 to 05, timed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${KD_CACHE_DIR:-$repo/cache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/instructor" && git clone -q "$repo" "$work/student"

echo "== instructor's clone, the full-mode cache: export"
(cd "$work/instructor" && /usr/bin/time -f "%e s" env KD_CACHE_DIR="$cache" \
    PYTHONPATH="$work/instructor" python -m kdutils.pack export "$work/teachers.zip" | cut -c1-120)
ls -l "$work/teachers.zip" | awk '{printf "pack: %.0f MB\n", $5/1e6}'

echo "== student's clone, an empty cache: import"
(cd "$work/student" && /usr/bin/time -f "%e s" env KD_CACHE_DIR="$work/student-cache" \
    PYTHONPATH="$work/student" python -m kdutils.pack import "$work/teachers.zip" | cut -c1-120)

echo "== student's clone: the notebooks' full-mode teacher calls"
cd "$work/student" && KD_CACHE_DIR="$work/student-cache" KD_DATA_DIR="$repo/data" \
    PYTHONPATH="$work/student" python - <<'PY'
import time

import kdutils as kd

mnist = kd.load_mnist(train=True), kd.load_mnist(train=False)
cifar = kd.load_cifar10(train=True), kd.load_cifar10(train=False)
half = cifar[0].select(kd.labelled_split(cifar[0], per_class=2500, seed=0)[0],
                       " (the teacher's part)")


def bn_teacher(epochs: int):
    return kd.cached_fit(lambda: kd.deep_nn(batch_norm=True), "cifar10-deepnn-bn-half", half,
                         cifar[1], seed=0, epochs=epochs, lr=1e-3, batch_size=128)


calls = {
    "02 mnist-teacher": lambda: kd.cached_fit(kd.mnist_teacher, "mnist-teacher", *mnist,
                                              epochs=6, lr=1e-4, batch_size=32, seed=0),
    "03 cifar10-deepnn": lambda: kd.cached_fit(kd.deep_nn, "cifar10-deepnn", *cifar, seed=0,
                                               epochs=10, lr=1e-3, batch_size=128),
    "04 BatchNorm teacher, 10 epochs": lambda: bn_teacher(10),
    "04 BatchNorm teacher, 1 epoch": lambda: bn_teacher(1),
    "05 hinton-teacher": lambda: kd.cached_fit(
        kd.hinton_teacher, "hinton-teacher", *mnist, seed=0, epochs=120, lr=1e-3,
        batch_size=128, lr_schedule="cosine", augment=kd.RandomShift(2), max_norm=3.0),
}
print("kdutils from", kd.__file__)
for name, call in calls.items():
    start = time.perf_counter()
    _, history = call()
    print(f"{name}: {history.final_accuracy:.2f}% loaded in {time.perf_counter() - start:.2f} s "
          f"(its training took {sum(history.column('seconds')) / 60:.0f} min)")
PY

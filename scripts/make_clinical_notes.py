#!/usr/bin/env python3
"""make_clinical_notes.py — write a synthetic clinical-notes dataset (JSONL).

    python3 scripts/make_clinical_notes.py --out-dir data/notes \
        [--train 200] [--heldout 20] [--seed 1]

Writes OUT_DIR/train.jsonl and OUT_DIR/heldout.jsonl: chat records
({"messages": [system, user, assistant]}, docs/training-data.md). The user
turn is a short made-up triage note (name, age, complaint, vitals); the
assistant turn is a fixed three-line format derived from the note by simple
rules:

    Triage: <urgent|soon|routine>
    Reason: <the rule that fired>
    Next step: <what to do>

Everything is invented: names, ages and complaints are drawn from small fixed
lists with the seed. No real patient data is involved. The same --seed gives
the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import random

SYSTEM = "You triage ward notes. Answer in the ward format."

FIRST = ["Alex", "Sam", "Jo", "Robin", "Kim", "Lee", "Pat", "Chris", "Dana", "Max", "Noa", "Ari"]
LAST = ["Marsh", "Vale", "Brook", "Hart", "Stone", "Reed", "Frost", "Lane", "Moss", "Hale"]
COMPLAINTS = [
    ("chest pain", "cardiac"),
    ("shortness of breath", "respiratory"),
    ("headache", "neuro"),
    ("abdominal pain", "abdominal"),
    ("ankle sprain", "minor"),
    ("sore throat", "minor"),
    ("dizziness", "neuro"),
    ("cough", "respiratory"),
    ("rash", "minor"),
    ("back pain", "minor"),
]


def make_note(rng: random.Random) -> tuple[str, str]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    age = rng.randint(18, 92)
    complaint, kind = rng.choice(COMPLAINTS)
    hr = rng.randint(55, 135)
    sys_bp = rng.randint(85, 175)
    temp = round(rng.uniform(36.0, 39.8), 1)
    spo2 = rng.randint(86, 100)
    dia_bp = rng.randint(50, min(100, sys_bp - 25))
    note = (f"{name}, {age}, {complaint}. HR {hr}, BP {sys_bp}/{dia_bp}, "
            f"T {temp}, SpO2 {spo2}%.")

    # Rules, first match wins.
    if spo2 < 92:
        level, reason, step = ("urgent", f"SpO2 {spo2}% is below 92%",
                               "Start oxygen and call the doctor now")
    elif kind == "cardiac" and (age >= 50 or hr > 110):
        level, reason, step = ("urgent", f"chest pain at age {age} with HR {hr}",
                               "ECG within 10 minutes")
    elif sys_bp < 90:
        level, reason, step = ("urgent", f"BP {sys_bp} systolic is low",
                               "IV access and call the doctor now")
    elif temp >= 38.5 or hr > 110:
        level, reason, step = ("soon", f"T {temp} and HR {hr}",
                               "Review within 1 hour; bloods and cultures")
    elif kind in ("neuro", "abdominal", "respiratory"):
        level, reason, step = ("soon", f"{complaint} with stable vitals",
                               "Doctor review within 2 hours")
    else:
        level, reason, step = ("routine", f"{complaint} with normal vitals",
                               "Nurse review; discharge advice")
    answer = f"Triage: {level}\nReason: {reason}\nNext step: {step}"
    return note, answer


def record(note: str, answer: str) -> dict:
    return {"messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Note: {note}"},
        {"role": "assistant", "content": answer},
    ]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--train", type=int, default=200, help="training examples")
    ap.add_argument("--heldout", type=int, default=20, help="held-out examples")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.train < 1 or args.heldout < 1:
        ap.error("--train and --heldout must be >= 1")

    rng = random.Random(args.seed)
    seen: set[str] = set()
    rows = []
    while len(rows) < args.train + args.heldout:
        note, answer = make_note(rng)
        if note in seen:  # held-out notes never appear in training
            continue
        seen.add(note)
        rows.append(record(note, answer))
    os.makedirs(args.out_dir, exist_ok=True)
    for name, part in (("train.jsonl", rows[:args.train]), ("heldout.jsonl", rows[args.train:])):
        with open(os.path.join(args.out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            for r in part:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{os.path.join(args.out_dir, name)}: {len(part)} examples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

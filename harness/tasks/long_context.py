"""The long-context suite, generated here from a seed and fitted to exact token lengths.

Three retrieval tasks in the style of RULER (Hsieh et al. 2024) and the passkey test (Mohtashami &
Jaggi 2023), written for this harness. Each hides its facts ("needles") in a haystack of neutral
sentences: the haystack is the task's `filler`, which `harness.prompts` grows until the whole
prompt (chat template included) measures exactly `context.input_tokens` tokens of the model's own
tokenizer, so `context=ctx1k ... ctx128k` is the length axis. With `context=natural` there is no
haystack: the needles alone.

- passkey: one 5-digit pass key at a seeded depth; answer: the key.
- niah-multikey: four "special magic number" needles with different keys; one key is asked
  for; answer: its 7-digit number (the other three are distractors).
- variable-tracking: RULER's `vt` definition: one chain of assignments (`VAR QWERT = 12345.`, then
  `VAR ASDFG = VAR QWERT.` ...) of `hops` + 1 variables, spread in order through the haystack; the
  question tells how many variables to list (RULER's answer prefix, its "assgined" typo included);
  answer: every variable of the chain.

Scoring is RULER's (`ruler` protocol): `string_match_all` on the stripped completion (control
characters turned into newlines): the fraction of the reference strings (the key, the number, each
variable name) that occur in it, case-insensitively (`score`, partial credit); `correct` = all of
them. The same function is RULER's `scripts/eval/synthetic/constants.py`, lm-eval's
`lm_eval/tasks/ruler/common_utils.py` and NeMo-Skills' `evaluation/evaluator/ruler.py`; the
equivalence with lm-eval's is tested. Examples are a pure function of `task.seed`, so every mode
and model sees the same needles at the same depths.
"""

from __future__ import annotations

import random
import re
import string

from harness.config import TaskConfig
from harness.tasks.base import Example, Protocol, Score, Task, take

POOL_SIZE = 256  # examples generated per seed; the first num_samples are used
KEY_ADJECTIVES = ("amber", "brave", "calm", "dusty", "eager", "fuzzy", "giant", "hollow", "icy", "jolly",
                  "kind", "lucky", "misty", "noble", "olive", "proud", "quiet", "rusty", "silver", "tidy")
KEY_NOUNS = ("anchor", "badger", "candle", "dragon", "engine", "falcon", "garden", "harbor", "island", "jacket",
             "kettle", "lantern", "meadow", "needle", "orchid", "pepper", "quartz", "rocket", "saddle", "tunnel")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f]")
RULER = Protocol("ruler", "1", "RULER (Hsieh et al. 2024) string_match_all, as lm-evaluation-harness 0.4.13 "
                 "lm_eval/tasks/ruler/common_utils.py (version 1.0) scores it")


def ruler_prediction(completion: str) -> str:
    """RULER's postprocess_pred: stripped, control characters turned into newlines, stripped again."""
    return CONTROL_CHARACTERS.sub("\n", completion.strip()).strip()


def string_match_all(completion: str, references: list[str]) -> Score:
    """The fraction of `references` found in the completion, case-insensitively; correct = all."""
    prediction = ruler_prediction(completion).lower()
    found = [r for r in references if r.lower() in prediction]
    value = len(found) / len(references)
    return Score(correct=value == 1.0, extracted=" ".join(found) or None, value=value,
                 detail=None if value == 1.0 else f"{len(found)} of {len(references)} reference strings found")


def insert_needles(haystack: str, needles: list[str], depths: list[float]) -> str:
    """Each needle at its depth (a fraction of the haystack), moved back to the start of a sentence."""
    if not haystack:
        return " ".join(needles)
    positions = []
    for depth in depths:
        position = int(depth * len(haystack))
        boundary = haystack.rfind(". ", 0, position)
        positions.append(0 if boundary < 0 else boundary + 2)
    out, previous = [], 0
    for position, needle in sorted(zip(positions, needles), key=lambda pair: pair[0]):
        out.append(haystack[previous:position])
        out.append(needle + " ")
        previous = position
    out.append(haystack[previous:])
    return "".join(out)


class NeedleTask(Task):
    version = "2"
    protocols = (RULER,)
    instruction: str

    def make_example(self, rng: random.Random, index: int, cfg: TaskConfig) -> Example:
        raise NotImplementedError

    def examples(self, cfg: TaskConfig) -> list[Example]:
        rng = random.Random(f"{self.name}-{cfg.seed}")
        return take([self.make_example(rng, i, cfg) for i in range(POOL_SIZE)], cfg)

    def render(self, example: Example, cfg: TaskConfig, filler: str = "") -> str:
        haystack = insert_needles(filler, list(example.metadata["needles"]), list(example.metadata["depths"]))
        return f"{self.instruction}\n\n{haystack}\n\n{example.question}"

    def score(self, example: Example, completion: str) -> Score:
        return string_match_all(completion, example.answer.split(" "))


class Passkey(NeedleTask):
    name = "passkey"
    instruction = ("There is a pass key hidden in the text below. Find it and remember it: "
                   "you will be asked for it at the end.")

    def make_example(self, rng: random.Random, index: int, cfg: TaskConfig) -> Example:
        key = str(rng.randint(10000, 99999))
        depth = round(rng.random(), 2)
        needle = f"The pass key is {key}. Remember it. {key} is the pass key."
        return Example(id=f"passkey-{cfg.seed}-{index}", question="What is the pass key? The pass key is", answer=key,
                       metadata={"needles": (needle,), "depths": (depth,)}, category=f"depth {depth:.1f}", protocol=cfg.protocol)


class MultiKeyNeedle(NeedleTask):
    name = "niah-multikey"
    needles_per_prompt = 4
    instruction = ("Some special magic numbers are hidden in the text below. Memorize them: "
                   "you will be asked for one of them at the end.")

    def make_example(self, rng: random.Random, index: int, cfg: TaskConfig) -> Example:
        keys = set()
        while len(keys) < self.needles_per_prompt:
            keys.add(f"{rng.choice(KEY_ADJECTIVES)}-{rng.choice(KEY_NOUNS)}")
        keys = sorted(keys)
        rng.shuffle(keys)
        values = [str(rng.randint(1_000_000, 9_999_999)) for _ in keys]
        depths = [round(rng.random(), 2) for _ in keys]
        asked = rng.randrange(len(keys))
        needles = tuple(f"One of the special magic numbers for {k} is: {v}." for k, v in zip(keys, values))
        question = (f"What is the special magic number for {keys[asked]} mentioned in the text? "
                    f"The special magic number for {keys[asked]} is")
        return Example(id=f"niah-multikey-{cfg.seed}-{index}", question=question, answer=values[asked],
                       metadata={"needles": needles, "depths": tuple(depths)}, category=f"depth {depths[asked]:.1f}",
                       protocol=cfg.protocol)


class VariableTracking(NeedleTask):
    name = "variable-tracking"
    hops = 4  # RULER's vt: num_chains 1, num_hops 4
    instruction = "Memorize and track the chain(s) of variable assignment hidden in the following text."

    def make_example(self, rng: random.Random, index: int, cfg: TaskConfig) -> Example:
        names = set()
        while len(names) < self.hops + 1:
            names.add("".join(rng.choice(string.ascii_uppercase) for _ in range(5)))
        chain = sorted(names)
        rng.shuffle(chain)
        value = rng.randint(10000, 99999)
        needles = [f"VAR {chain[0]} = {value}."] + [f"VAR {chain[i]} = VAR {chain[i - 1]}." for i in range(1, len(chain))]
        depths = sorted(round(rng.random(), 3) for _ in needles)
        question = (f"Question: Find all variables that are assigned the value {value} in the text above. "
                    f"Answer: According to the chain(s) of variable assignment in the text above, {len(chain)} variables "
                    f"are assgined the value {value}, they are:")
        return Example(id=f"variable-tracking-{cfg.seed}-{index}", question=question, answer=" ".join(chain),
                       metadata={"needles": tuple(needles), "depths": tuple(depths)}, protocol=cfg.protocol)


LONG_CONTEXT_TASKS = {task.name: task for task in (Passkey(), MultiKeyNeedle(), VariableTracking())}

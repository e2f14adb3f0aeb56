"""Completions for checking the protocols' scorers against the references' own code: written the
way models answer (markdown bullets, thousands commas, dollars, trailing periods, several boxes,
`\\fbox`, unclosed boxes, no box), each with its reference answer. Used by
tests/test_protocols_lm_eval.py, tests/test_protocols_nemo_skills.py and the disagreement count
(`python -m tests.protocol_disagreements`)."""

from __future__ import annotations

# --- GSM8K: (completion, the dataset's full answer field) ----------------------------------------
GSM8K_GOLDS = ("18", "3750", "-7", "150", "14", "1000000", "0", "625", "40", "12")
GSM8K_TEMPLATES = (
    "{calc}\n#### {g}",  # the few-shot format
    "{calc}\n#### {g}.",  # a trailing period
    "{calc}\n####{g}",  # no space: strict-match needs '#### '
    "{calc}\n#### ${g}",  # a dollar sign after ####
    "The answer is {g}.",
    "The answer is ${g}.00.",  # dollars and cents
    "So the result is **{g}**",  # markdown bold
    "Steps:\n- 9 + 9 = 18\n- {g}",  # a markdown bullet: '- N' is not a negative number
    "{g} is the answer, not 99.",  # the last number is a distractor
    "#### {g}\nbut wait, it is 13",  # strict and flexible disagree
    "Total: {g} units\n\nQuestion: next one has 77",  # before the stop string is cut
    "It is {g}%",
    "{calc} so {g}",
    "The answer is {g},",  # a trailing comma
    "Answer: \\boxed{{{g}}}",  # a chat model's box
    "I am not sure.",
)
GSM8K_SPECIAL = (
    ("She has 3 * 1250 = 3,750 plants.\n#### 3,750", "He has 3,750 plants.\n#### 3750"),
    ("The answer is 1,000,000.", "#### 1000000"),
    ("It is \u22127 degrees at night.", "#### -7"),  # a typographic minus
    ("1,2,3: the count is 3", "#### 3"),
    ("It costs $1,200.50 in total.", "#### 1200.50"),
    ("#### 18\n#### 19", "#### 18"),  # two #### lines: strict takes the first
    ("The answer is 18.\n\n", "#### 18"),
    ("The answer is 18.5", "#### 18"),
    ("The answer is 018", "#### 18"),
    ("-18", "#### -18"),
    ("- 18", "#### -18"),  # a bullet: lm-eval reads 18
    ("Answer:\n\n- 18", "#### 18"),
    ("The answer is 18.0", "#### 18"),
    ("$18", "#### 18"),
    ("18.", "#### 18"),
    ("1.", "#### 1"),
    ("...", "#### 3"),
    ("", "#### 3"),
    ("The number is 3.14159.", "#### 3.14159"),
    ("She had 5 apples, ate 2, so 3.", "#### 3"),
    ("Result: 12,000", "#### 12000"),
    ("Result: 12, 000", "#### 12000"),
    ("#### 1,000.", "#### 1000"),
)


def gsm8k_cases() -> list[tuple[str, str]]:
    cases = list(GSM8K_SPECIAL)
    for gold in GSM8K_GOLDS:
        for template in GSM8K_TEMPLATES:
            completion = template.format(g=gold, calc="We compute 6 * 3 = 18 first.")
            cases.append((completion, f"Working: 6 * 3 = <<6*3=18>>18.\n#### {gold}"))
    return cases


# --- MATH-500 / GSM8K under NeMo-Skills: (reference answer, completion) --------------------------
MATH_GOLDS = ("\\frac{3}{4}", "-2", "24", "1000", "(1,2]", "3\\sqrt{2}", "\\frac{1}{2}", "18", "5", "\\text{(A)}")
MATH_TEMPLATES = (
    "So the answer is $\\boxed{{{g}}}$.",
    "First \\boxed{{7}}, but correcting it: \\boxed{{{g}}}",  # several boxes: the last counts
    "\\boxed{{{g}}} and then \\boxed{{7}}",  # ... even when it is wrong
    "The answer is \\fbox{{{g}}}.",  # \fbox alone
    "The answer is \\boxed{{{g}",  # unclosed
    "The answer is {g}.",  # no box
    "The answer is $\\boxed {{{g}}}$.",  # a space before the brace
    "Thus \\boxed{{x = {g}}}",  # an equation in the box
    "Hence \\boxed{{{g}.}}",  # a period inside the box
    "We get $\\boxed{{\\displaystyle {g}}}$",
)
MATH_SPECIAL = (
    ("\\frac{3}{4}", "Adding gives $\\boxed{\\dfrac34}$."),
    ("\\frac{3}{4}", "So the sum is \\boxed{0.75}."),
    ("-2", "Then $x = \\boxed{2}$."),
    ("24", "The LCM is \\boxed{24 \\text{ apples}}."),
    ("1000", "That makes \\boxed{1,000}."),
    ("(1,2]", "In interval notation: \\boxed{(1, 2]}"),
    ("(1,2]", "In interval notation: \\boxed{[1, 2]}"),
    ("3\\sqrt{2}", "We get \\boxed{\\sqrt{18}}."),
    ("50", "The rate is \\boxed{50\\%}."),
    ("50", "The rate is \\boxed{50%}."),
    ("0.5", "\\boxed{\\frac{1}{2}}"),
    ("\\frac{1}{2}", "\\boxed{0.5}"),
    ("A", "The correct option is \\boxed{A}."),
    ("A", "The correct option is \\boxed{B}."),
    ("\\text{(C)}", "\\boxed{C}"),
    ("2\\pi", "\\boxed{2 \\pi}"),
    ("\\pi", "\\boxed{3.14159}"),
    ("10", "\\boxed{10} \\boxed{}"),
    ("10", "\\boxed{}"),
    ("x^2+2x+1", "\\boxed{(x+1)^2}"),
    ("\\{1,2\\}", "\\boxed{\\{2, 1\\}}"),
    ("1, 2", "\\boxed{2, 1}"),
    ("\\$18", "\\boxed{18}"),
    ("18", "\\boxed{\\$18}"),
    ("18", "\\boxed{18 \\text{ dollars}}"),
    ("\\text{Monday}", "\\boxed{\\text{Monday}}"),
    ("\\text{Monday}", "\\boxed{Monday}"),
    ("\\text{Monday}", "\\boxed{monday}"),
    ("7", "<think>maybe \\boxed{6}</think> \\boxed{7}"),
    ("7", "\\boxed{\\boxed{7}}"),
    ("7", "\\boxed{{7}}"),
    ("12", "\\boxed{12}\n\nProblem: next \\boxed{13}"),
)


def math_cases() -> list[tuple[str, str]]:
    cases = list(MATH_SPECIAL)
    for gold in MATH_GOLDS:
        for template in MATH_TEMPLATES:
            cases.append((gold, template.format(g=gold)))
    return cases


# --- RULER: (task, completion, reference strings) -----------------------------------------------
RULER_CASES = (
    ("passkey", " 71432.", ["71432"]),
    ("passkey", " 71433", ["71432"]),
    ("passkey", "The pass key is 714321", ["71432"]),  # a substring counts, as in RULER
    ("passkey", "\n\n71432\x07", ["71432"]),
    ("passkey", "", ["71432"]),
    ("niah-multikey", " 9999999, or 4827163", ["4827163"]),
    ("niah-multikey", " 4827163.", ["4827163"]),
    ("niah-multikey", " 482 7163", ["4827163"]),
    ("variable-tracking", " ABCDE FGHIJ KLMNO PQRST UVWXY", ["ABCDE", "FGHIJ", "KLMNO", "PQRST", "UVWXY"]),
    ("variable-tracking", " abcde, fghij, klmno", ["ABCDE", "FGHIJ", "KLMNO", "PQRST", "UVWXY"]),  # partial, any case
    ("variable-tracking", " ABCDE FGHIJ KLMNO PQRST UVWXY ZZZZZ", ["ABCDE", "FGHIJ", "KLMNO", "PQRST", "UVWXY"]),
    ("variable-tracking", " none", ["ABCDE", "FGHIJ", "KLMNO", "PQRST", "UVWXY"]),
)


def ruler_cases() -> list[tuple[str, str, list[str]]]:
    cases = list(RULER_CASES)
    for key in ("10001", "55555", "99999"):
        for completion in (f" {key}", f" {key}.", f"The pass key is {key}", f" {key[:-1]}", f" {key}{key}",
                           f"\t{key}\n", f" {int(key) + 1}", " I do not know"):
            cases.append(("passkey", completion, [key]))
    names = ["QWERT", "ASDFG", "ZXCVB", "POIUY", "LKJHG"]
    for k in range(len(names) + 1):
        cases.append(("variable-tracking", " " + " ".join(names[:k]), names))
        cases.append(("variable-tracking", " " + ", ".join(n.lower() for n in names[k:]), names))
    for value in ("1234567", "7654321"):
        for completion in (f" {value}", f" is: {value}.", f" {value[::-1]}", f" {value[:4]}-{value[4:]}", " 0"):
            cases.append(("niah-multikey", completion, [value]))
    return cases

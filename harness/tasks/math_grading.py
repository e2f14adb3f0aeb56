"""Math answer grading after NeMo-Skills (the vendor's evaluation) and after lm-eval's GSM8K task.

NeMo-Skills (NVIDIA/NeMo-Skills at 0b012df8, `nemo_skills/evaluation/math_grader.py`, on
math-verify): the answer is the content of the *last* `\\boxed{...}` of the generation, braces
balanced. No `\\boxed` at all, an unclosed box, `\\boxed 5` or `\\boxed {5}` (no brace right after
the command) and a lone `\\fbox{...}` give no answer, which scores wrong. The answer is then
compared with the reference by `math_equal`: literal comparison after LaTeX normalisation where
both are plain words or plain digits, else math-verify's symbolic check. The rules are pinned case
by case in tests/test_protocols_nemo_skills.py.

lm-eval GSM8K (`lm_eval/tasks/gsm8k/gsm8k.yaml`, lm-eval 0.4.13, task version 3.0): a regex filter
picks one string from the completion, then exact match after removing `regexes_to_ignore` from
both sides and lower-casing. The equivalence with lm-eval's own filter and metric classes is
tested in tests/test_protocols_lm_eval.py.
"""

from __future__ import annotations

import re
import threading

# --- lm-eval gsm8k.yaml (version 3.0) -------------------------------------------------------------
GSM8K_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")  # filter "strict-match": regex, then take_first
GSM8K_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")  # "flexible-extract": group_select -1
GSM8K_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")  # metric exact_match: regexes_to_ignore, in order
LM_EVAL_INVALID = "[invalid]"  # RegexFilter's fallback when nothing matches


def regex_filter(completion: str, pattern: re.Pattern, group_select: int) -> str:
    """lm-eval's RegexFilter on one response: the selected match of findall; for a pattern with
    groups, the first non-empty group of that match; stripped; the fallback when nothing matches."""
    matches = pattern.findall(completion)
    if not matches:
        return LM_EVAL_INVALID
    chosen = matches[group_select]
    if isinstance(chosen, tuple):
        chosen = next((group for group in chosen if group), LM_EVAL_INVALID)
    return chosen.strip()


def exact_match_normalise(text: str, ignore: tuple[str, ...] = GSM8K_IGNORE) -> str:
    """Both sides of lm-eval's exact_match (ignore_case: true, ignore_punctuation: false)."""
    for pattern in ignore:
        text = re.sub(pattern, "", text)
    return text.lower()


# --- NeMo-Skills math_grader.py -------------------------------------------------------------------
def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, braces balanced, as NeMo-Skills' `search_boxed` reads
    it: the brace count starts at the command, so the first brace after `\\boxed` must follow it
    directly; anything else (no box, unclosed, `\\boxed 5`, `\\fbox` alone) is no answer."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    depth, opened = 0, None
    for position in range(start, len(text)):
        char = text[position]
        if char == "{":
            depth += 1
            opened = position if opened is None else opened
        elif char == "}":
            depth -= 1
            if depth == 0:
                if opened != start + len("\\boxed"):
                    return None
                return text[opened + 1:position]
    return None


MCQ_LETTERS = "ABCDEFGHIJ"
PERCENT = re.compile(r"(\d+\.?\d*)(?:\\%|%)")
LITERAL = re.compile(r"[a-zA-Z ,]+|[0-9 ]+")
LATEX_ENVIRONMENT = re.compile(r"\$.*\$|\\\(.*\\\)|\\\[.*\\\]|\\boxed\{", re.DOTALL)


def _strip_percent_and_period(answer: str) -> str:
    match = PERCENT.fullmatch(answer)
    if match:
        answer = match.group(1)
    return answer.rstrip(".\\")  # a sentence's full stop, and a stray backslash before it


# MathEvaluatorConfig's defaults (nemo_skills/evaluation/evaluator/math.py), handed to the last verify
NUMERIC_PRECISION, VERIFY_TIMEOUT_S = 15, 10
PARSE_TIMEOUT_S = 5  # math-verify's parse default, which NeMo-Skills keeps


def math_equal(reference, predicted: str | None) -> bool:
    """NeMo-Skills' verdict for a predicted answer (None: nothing extracted) against the reference."""
    if predicted is None:
        return False
    from latex2sympy2_extended import NormalizationConfig, normalize_latex
    from math_verify import LatexExtractionConfig, StringExtractionConfig, parse, verify

    # math-verify times out with SIGALRM, which only the main thread can use
    main = threading.current_thread() is threading.main_thread()
    parse_timeout, verify_timeout = (PARSE_TIMEOUT_S, VERIFY_TIMEOUT_S) if main else (None, None)
    reference, predicted = str(reference), str(predicted)
    letters = [StringExtractionConfig(strings=tuple(MCQ_LETTERS))]
    if re.fullmatch("|".join(MCQ_LETTERS), reference.strip()):
        if verify(parse(reference, letters, parsing_timeout=parse_timeout),
                  parse(predicted, letters, parsing_timeout=parse_timeout), timeout_seconds=parse_timeout):
            return True
    reference, predicted = _strip_percent_and_period(reference), _strip_percent_and_period(predicted)
    # NeMo-Skills hands normalize_latex the NormalizationConfig class itself: its field defaults.
    normal_reference = normalize_latex(reference, NormalizationConfig)
    normal_predicted = normalize_latex(predicted, NormalizationConfig)
    same = normal_reference.replace(" ", "") == normal_predicted.replace(" ", "")
    if same or (LITERAL.fullmatch(normal_reference) and LITERAL.fullmatch(normal_predicted)):
        return same
    # math-verify reads LaTeX only inside a math environment
    wrap = (lambda text: text if LATEX_ENVIRONMENT.search(text) else f"${text}$")
    gold = parse(wrap(reference), [LatexExtractionConfig()], parsing_timeout=parse_timeout)
    guess = parse(wrap(predicted), [LatexExtractionConfig()], parsing_timeout=parse_timeout)
    return bool(verify(gold, guess, numeric_precision=NUMERIC_PRECISION, timeout_seconds=verify_timeout))

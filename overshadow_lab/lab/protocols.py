"""Training protocols: named stopping rules, each with the comparison it makes fair.

A measured trend of R against P, L or S is only as good as the rule that decided when each run
stopped, because the rule fixes what is held equal between the runs being compared. The lab
offers four rules (:data:`PROTOCOLS`), all implemented by
:func:`overshadow_lab.lab.train.train_model`; :func:`protocol_options` turns a protocol's name
into the training options of a run, so that a sweep, a script and a chapter name the same
protocol the same way::

    run_sweep("P", seeds=5, **protocol_options("exposure", exposures=20))

What each protocol holds equal, and what it lets vary (the rationale is also each entry's
``rationale``):

* ``"epochs"`` (:data:`PAPER_EPOCHS`), the paper's protocol [B §4.2]: a fixed number of passes
  over the corpus with a learning rate that decays linearly to zero. Every statement is seen
  the same number of times, but the number of optimizer steps grows with the corpus, that is
  with P (and the tokens per step with L), so a P = 100 corpus gets about 34 times the updates
  of a P = 2 corpus.
* ``"exposure"`` (:data:`EQUAL_EXPOSURE`): every subordinate statement is presented exactly
  ``exposures`` times, whatever P, at a constant learning rate after warm-up; the sampler counts
  the presentations and the run stops when the least-seen subordinate statement reaches the
  budget (``TrainResult.exposure`` records the counts). With shuffled passes over the whole
  corpus the dominant statements are seen as often, so the step counts equal those of
  ``"epochs"``; what differs is that the learning rate at the k-th exposure is the same for
  every run and does not depend on where a decay schedule happens to be. This is the protocol
  that answers the question the law asks: with the subordinate fact shown equally often, does
  more popular competing knowledge overshadow it more?
* ``"plateau"`` (:data:`LOSS_PLATEAU`): train until the training loss stops improving (no
  relative improvement above ``plateau_tol`` over ``patience`` checks), capped by
  ``max_steps``. It compares models at convergence as far as the loss can tell, which is what
  a theory about the optimum (the solvable model, the generalization bound) speaks to; but the
  loss is dominated by the dominant statements, so a plateau can be reached while the few
  subordinate statements are still being learnt, and the stop is noisy.
* ``"converge"`` (:data:`RECALL_THRESHOLD`), the lab's first rule: train until the dominant
  set is recalled (RR >= ``rr_threshold``) or the loss plateaus. It equalises one thing only,
  the recall of the dominant set; a popular dominant set is recalled after few passes, so at
  high P a run stops after the subordinate statements have been seen only once or twice. A
  rise of R with P under this rule is largely a rise in how *little* the subordinate knowledge
  was trained: an exposure effect, not overshadowing at equal training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from overshadow_lab.lab.train import TrainConfig


@dataclass(frozen=True)
class Protocol:
    """A named training protocol: its rule, its default options and why one would use it."""

    name: str
    rule: str
    holds_equal: str
    lets_vary: str
    rationale: str
    options: dict = field(default_factory=dict)


PAPER_EPOCHS = Protocol(
    name="epochs",
    rule="epochs",
    holds_equal="passes over the corpus (so exposures of every statement)",
    lets_vary="optimizer steps, which grow with P (corpus size)",
    rationale="the paper's protocol [B §4.2]; reproduces its setting, at the price of giving "
    "popular corpora more updates",
    options={"epochs": 20},
)
EQUAL_EXPOSURE = Protocol(
    name="exposure",
    rule="exposure",
    holds_equal="presentations of each subordinate statement, and the learning rate at each",
    lets_vary="optimizer steps, which grow with P (corpus size)",
    rationale="compares runs in which the subordinate fact was shown equally often, which is "
    "the comparison the law of overshadowing is about",
    options={"exposures": 20},
)
LOSS_PLATEAU = Protocol(
    name="plateau",
    rule="plateau",
    holds_equal="convergence of the training loss (as far as its plateau tells)",
    lets_vary="steps and exposures; the loss is mostly the dominant statements' loss",
    rationale="compares models near the end of training, which is what theories of the "
    "optimum speak to",
    options={"max_steps": 3000, "patience": 8, "plateau_tol": 1e-3},
)
RECALL_THRESHOLD = Protocol(
    name="converge",
    rule="converge",
    holds_equal="recall of the dominant set (RR >= rr_threshold)",
    lets_vary="exposures of the subordinate statements, which fall steeply with P",
    rationale="cheap, and it guarantees that the knowledge that could overshadow was learnt; "
    "but it confounds P with how little the subordinate statements were seen",
    options={"rr_threshold": 0.95},
)

#: The protocols by name, in the order the book compares them.
PROTOCOLS: dict[str, Protocol] = {
    p.name: p for p in (PAPER_EPOCHS, EQUAL_EXPOSURE, LOSS_PLATEAU, RECALL_THRESHOLD)
}

#: The protocol the lab's law and the chapter's recorded grids use (see :data:`EQUAL_EXPOSURE`).
ADOPTED = "exposure"

_TRAIN_FIELDS = set(TrainConfig.__dataclass_fields__)


def get_protocol(name: str) -> Protocol:
    """The :class:`Protocol` called ``name`` (one of :data:`PROTOCOLS`)."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}: use one of {', '.join(PROTOCOLS)}") from None


def protocol_options(name: str, **overrides: Any) -> dict:
    """The training options of protocol ``name``: its rule, its defaults, then ``overrides``.

    ``protocol_options("exposure", exposures=10)`` -> ``{"rule": "exposure", "exposures": 10}``.
    Unknown option names are refused before any training (one line naming the valid ones).
    """
    p = get_protocol(name)
    unknown = sorted(k for k in overrides if k not in _TRAIN_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown training option(s) {', '.join(unknown)} for protocol {name!r}; "
            f"options are the fields of TrainConfig ({', '.join(sorted(_TRAIN_FIELDS))})"
        )
    return {"rule": p.rule, **p.options, **overrides}


def describe_protocols():
    """The protocols as a table: name, rule, what each holds equal, what it lets vary, why."""
    return pd.DataFrame(
        [
            {
                "protocol": p.name,
                "rule": p.rule,
                "holds equal": p.holds_equal,
                "lets vary": p.lets_vary,
                "rationale": p.rationale,
            }
            for p in PROTOCOLS.values()
        ]
    )


__all__ = [
    "ADOPTED",
    "EQUAL_EXPOSURE",
    "LOSS_PLATEAU",
    "PAPER_EPOCHS",
    "PROTOCOLS",
    "RECALL_THRESHOLD",
    "Protocol",
    "describe_protocols",
    "get_protocol",
    "protocol_options",
]

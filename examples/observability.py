"""Watching retries and queue state: logging configuration against a server injecting faults.

The embedded server is started with fault injection (random 503s on training submits, 429
back-pressure on sampling, 408 "still pending" and 503 answers while polling). The work still
completes, because every layer retries; the `tinker` logger tells you what happened:

- INFO  tinker._retry.transport  "POST /api/v1/forward_backward failed (HTTP 503); retry 1 of 10
  in 0.41s"
- DEBUG tinker._poller   "request ... still pending (408)" / "polling ... got HTTP 503"
- DEBUG tinker._limits   "sampling backs off after HTTP 429: ..."
- WARNING "Training is paused for ..." when the server reports a paused queue (never locally)

Setting TINKER_LOG=debug (or info) before creating the ServiceClient does the same as the
level setting in `retry_logging`.

    python examples/observability.py --verbose
"""

from __future__ import annotations

import collections
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence

from common import DEFAULT_MODEL, example_parser, supervised_datum
from sl_loop import CORPUS

import tinker
import tinker.local
from tinker import types

DEFAULT_FAULTS = "train.5xx=0.15,sample.429=0.1,poll.408=0.3,poll.5xx=0.1,seed=2"

# Which logger and message tell of which kind of retry.
RETRY_SIGNS = {
    "http retry": ("tinker._retry.transport", "; retry "),
    "submit retry": ("tinker._retry", "; retry "),
    "poll 408 (queue state)": ("tinker._poller", "(408)"),
    "poll 5xx": ("tinker._poller", "got HTTP 5"),
    "batch poll 5xx": ("tinker._batch_poll", "got HTTP 5"),
    "sample 429 back-off": ("tinker._limits", "backs off"),
}


class RetryCounter(logging.Handler):
    """Counts the `tinker` log records that report a retry, by kind."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.counts: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for kind, (logger_name, sign) in RETRY_SIGNS.items():
            if record.name == logger_name and sign in message:
                self.counts[kind] += 1


@contextlib.contextmanager
def retry_logging(verbose: bool) -> Iterator[RetryCounter]:
    """Print tinker's log to stderr (INFO, or DEBUG when verbose) and count every retry kind.

    Handlers go on the `tinker` logger and are removed again on exit.
    """
    tinker_logger = logging.getLogger("tinker")
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)-7s %(name)s: %(message)s"))
    counter = RetryCounter()
    saved_level = tinker_logger.level
    tinker_logger.setLevel(logging.DEBUG)  # let every record reach the counter
    tinker_logger.addHandler(console)
    tinker_logger.addHandler(counter)
    try:
        yield counter
    finally:
        tinker_logger.removeHandler(console)
        tinker_logger.removeHandler(counter)
        tinker_logger.setLevel(saved_level)


def main(
    model: str = DEFAULT_MODEL,
    faults: str = DEFAULT_FAULTS,
    steps: int = 6,
    samples: int = 32,
    verbose: bool = False,
) -> dict[str, object]:
    """Train and sample against a faulty local server; returns what was injected and seen."""
    injector = tinker.local.Faults.parse(faults)
    queue_states: collections.Counter[str] = collections.Counter()
    with (
        retry_logging(verbose) as counter,
        tempfile.TemporaryDirectory(prefix="tinker-observability-") as data_dir,
        tinker.local.serve(data_dir=data_dir, faults=injector) as server,
        tinker.ServiceClient(base_url=server.url, api_key="local-key") as service,
    ):
        trainer = service.create_lora_training_client(base_model=model, rank=8, seed=0)

        # Training and sampling clients are the queue-state observers of their own requests;
        # wrapping the hook on one instance records every state the server reports.
        report_state = trainer.on_queue_state_change

        def record_state(state: tinker.QueueState) -> None:
            queue_states[state.name] += 1
            report_state(state)

        trainer.on_queue_state_change = record_state  # type: ignore[method-assign]

        tokenizer = trainer.get_tokenizer()
        batch = [supervised_datum(tokenizer.encode(text)) for text in CORPUS]
        losses = []
        for _ in range(steps):
            backward = trainer.forward_backward(batch, "cross_entropy")
            trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
            losses.append(backward.result().metrics["loss:sum"])

        sampler = trainer.save_weights_and_get_sampling_client()
        prompt = types.ModelInput.from_ints(tokenizer.encode("The"))
        params = types.SamplingParams(max_tokens=8)
        futures = [sampler.sample(prompt, 1, params) for _ in range(samples)]
        sampled = sum(len(future.result().sequences) for future in futures)

    injected = dict(injector.injected)
    print(f"losses: {', '.join(f'{loss:.1f}' for loss in losses)}; samples: {sampled}")
    print(f"faults injected by the server: {injected}")
    print(f"retries seen in the tinker log: {dict(counter.counts)}")
    print(f"queue states reported to the trainer: {dict(queue_states)}")
    return {
        "losses": losses,
        "sampled": sampled,
        "injected": injected,
        "retries": dict(counter.counts),
        "queue_states": dict(queue_states),
    }


def cli(argv: Sequence[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help="fault injection spec")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--verbose", action="store_true", help="show DEBUG records too")
    args = parser.parse_args(argv)
    main(args.model, args.faults, args.steps, args.samples, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(cli())

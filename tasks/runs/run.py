"""Train, validate or run inference for any task named by `task_cls` in a YAML config.

    python tasks/runs/run.py --config config/models/visinger.yaml --exp_name csd_visinger [--hparams "k=v,..."] [--reset]
    python tasks/runs/run.py --exp_name csd_visinger --validate        # metrics of the newest checkpoint
    python tasks/runs/run.py --exp_name csd_visinger --infer [--split valid]   # task.infer(work_dir, split): render + evaluate
    torchrun --nproc_per_node=4 tasks/runs/run.py --config ... --exp_name ...

Exit codes: 0 done (or stopped cleanly by SIGINT/SIGTERM after a checkpoint), 2 a user mistake
(one line on stderr), 3 training diverged (too many non-finite updates in a row). docs/RUNNER.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root is the import root

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

import argparse  # noqa: E402

from config.errors import UserInputError, run_cli  # noqa: E402
from tasks.distributed import barrier, init_distributed, shutdown_distributed  # noqa: E402
from tasks.experiment import ROOT_ENV, plan_evaluation, plan_training, prepare_work_dir  # noqa: E402
from tasks.logging_utils import close_text_log, format_metrics, open_text_log  # noqa: E402
from tasks.trainer import NonFiniteLossError, Trainer  # noqa: E402

EXIT_DIVERGED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train / validate / infer a task from a YAML config (docs/RUNNER.md).")
    parser.add_argument("--config", help="model YAML (required for a new experiment; a resumed one uses its saved config.yaml)")
    parser.add_argument("--exp_name", required=True, help="experiment name: the work dir is <work_dir_root>/<exp_name>")
    parser.add_argument("--hparams", default=None, help='overrides "a.b=1,c=[1,2]"; on resume only a few trainer keys may change')
    parser.add_argument("--reset", action="store_true", help="delete the experiment's work dir and start over")
    parser.add_argument("--validate", action="store_true", help="validate the newest (or --ckpt) checkpoint and exit")
    parser.add_argument("--infer", action="store_true", help="run task.infer(work_dir) with the newest (or --ckpt) checkpoint")
    parser.add_argument("--split", choices=("valid", "test"), default=None, help="the split --infer renders and evaluates (default: test)")
    parser.add_argument("--ckpt", default=None, help="checkpoint for --validate / --infer (default: the newest)")
    parser.add_argument("--work_dir_root", default=None, help=f"where experiments live (default: ${ROOT_ENV}, else ./checkpoints)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    evaluating = args.validate or args.infer
    if args.validate and args.infer:
        raise UserInputError("--validate and --infer: choose one")
    if evaluating and args.reset:
        raise UserInputError("--reset only applies to training; drop it with --validate / --infer")
    if args.split and not args.infer:
        raise UserInputError("--split only applies to --infer (validation always uses the valid split)")
    if args.ckpt and not evaluating:
        raise UserInputError("--ckpt only applies to --validate / --infer (training resumes from the newest checkpoint)")

    # Every rank plans from the same files before the process group forms (a rendezvous), so none
    # reads while rank 0 writes.
    if evaluating:
        plan = plan_evaluation(args.exp_name, args.hparams, args.ckpt, args.work_dir_root)
    else:
        plan = plan_training(args.config, args.exp_name, args.hparams, args.reset, args.work_dir_root)
    ctx = init_distributed(plan.runner.trainer.device)
    log = None
    trainer = None
    try:
        if ctx.is_main and not evaluating:
            prepare_work_dir(plan)
        barrier(ctx)
        log = open_text_log(plan.work_dir if ctx.is_main else None, ctx.is_main, f"{plan.work_dir}:{ctx.rank}")
        for message in plan.messages:
            log.info(message)
        for warning in plan.warnings:
            log.warning("warning: %s", warning)
        if ctx.is_distributed:
            log.info("distributed: %d processes on %s (batch settings are per process)", ctx.world_size, ctx.device.type)
        trainer = Trainer(plan.task, plan.runner, plan.config, plan.work_dir, ctx, log)
        try:
            if args.validate:
                assert plan.resume_from is not None
                metrics = trainer.validate_checkpoint(plan.resume_from)
                if ctx.is_main:
                    print(f"validation of {plan.resume_from}: {format_metrics(metrics)}")
                return 0
            if args.infer:
                assert plan.resume_from is not None
                trainer.infer_checkpoint(plan.resume_from, args.split or "test")
                return 0
            return trainer.fit(plan.resume_from, plan.resume_state)
        except UserInputError as error:
            log.debug("error: %s", error)  # into train.log too; run_cli prints it
            raise
        except NonFiniteLossError as error:
            log.error("error: %s", error)
            return EXIT_DIVERGED
    finally:
        if trainer is not None:
            trainer.close()
        if log is not None:
            close_text_log(log)
        shutdown_distributed()


if __name__ == "__main__":
    run_cli(main)

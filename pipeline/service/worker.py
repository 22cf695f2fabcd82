"""Start a worker: validate everything that can be validated, then run Faust.

Every check that can fail (settings, model files, broker reachability) runs
before the consumer joins the group, so a misconfigured worker exits with one
clear line and consumes nothing.
"""

from __future__ import annotations

import asyncio

from pipeline.logs import configure_logging, get_logger
from pipeline.settings import Settings

log = get_logger("streamnlp.worker")


def load_classifier(settings: Settings):  # -> SentimentClassifier (import kept lazy for fast CLI startup)
    from pipeline.inference.sentiment import ClassifierConfig, SentimentClassifier

    return SentimentClassifier.load(
        settings.model_dir,
        ClassifierConfig(
            max_tokens=settings.max_tokens,
            batch_size=settings.inference_batch_size,
            intra_op_threads=settings.inference_threads,
            precision=settings.model_precision,
        ),
    )


def load_shadow(settings: Settings):  # -> SentimentClassifier | None
    """The shadow model, or None (unset, or unloadable: shadow mode is an experiment and never stops the worker)."""
    if settings.shadow_model_dir is None:
        return None
    from pipeline.inference.sentiment import ClassifierConfig, ModelLoadError, SentimentClassifier

    try:
        return SentimentClassifier.load(
            settings.shadow_model_dir,
            ClassifierConfig(
                max_tokens=settings.max_tokens,
                batch_size=settings.inference_batch_size,
                intra_op_threads=1,  # its own single thread: the primary keeps the other cores
                precision=settings.shadow_precision,
            ),
        )
    except ModelLoadError as exc:
        log.error("shadow_disabled", reason=str(exc), shadow_model_dir=str(settings.shadow_model_dir))
        return None


def load_toxicity(settings: Settings):  # -> ToxicityClassifier | None
    """The toxicity model, or None when STREAMNLP_TOXICITY_ENABLED=false (a missing model is a ModelLoadError)."""
    if not settings.toxicity_enabled:
        return None
    from pipeline.inference.toxicity import ToxicityClassifier, ToxicityConfig

    return ToxicityClassifier.load(settings.toxicity_model_dir, ToxicityConfig(threshold=settings.toxicity_threshold))


def load_summarizer(settings: Settings):  # -> Summarizer | SummarizerProcess | None
    """The summary lane's generator; with isolation=process, child processes that have loaded the model
    (a model that cannot load fails here, with the child's own ModelLoadError)."""
    if settings.summarizer_mode != "abstractive":
        return None
    from pipeline.inference.summarizer import Summarizer, SummarizerConfig

    config = SummarizerConfig(
        max_new_tokens=settings.summarizer_max_new_tokens,
        max_prompt_tokens=settings.summarizer_max_prompt_tokens,
        batch_size=settings.summarizer_batch_size,
        intra_op_threads=settings.summarizer_threads,
        precision=settings.summarizer_precision,
        constrain_to_source=settings.summarizer_constrain_to_source,
    )
    if settings.summarizer_isolation == "thread":
        return Summarizer.load(settings.summarizer_model_dir, config)
    from pipeline.inference.process import SummarizerProcess

    # one child per parallel generation chunk: the agent's executor runs summarizer_concurrency calls at once
    return SummarizerProcess(settings.summarizer_model_dir, config, processes=settings.summarizer_concurrency,
                             priority=settings.summarizer_priority).start()


def run_worker(settings: Settings) -> None:
    """Blocks until the worker stops (SIGTERM/SIGINT)."""
    import faust  # noqa: F401 - imported here so `streamnlp --help` stays fast

    from pipeline.kafka.clients import check_reachable, ensure_topics
    from pipeline.service.app import create_app

    configure_logging(settings.log_level, settings.log_format, log_text_bodies=settings.log_text_bodies)
    classifier = load_classifier(settings)
    info = classifier.info
    log.info("model_loaded", model=info.name, version=info.version, precision=info.precision, path=str(info.path))
    toxicity = load_toxicity(settings)
    if toxicity is not None:
        log.info("toxicity_loaded", model=toxicity.info.name, version=toxicity.info.version,
                 languages=sorted(toxicity.languages))
    summarizer = load_summarizer(settings)
    if summarizer is not None:
        s_info = summarizer.info
        log.info("summarizer_loaded", model=s_info.name, version=s_info.version, precision=s_info.precision,
                 isolation=settings.summarizer_isolation)
    shadow = load_shadow(settings)
    if shadow is not None:
        log.info("shadow_loaded", model=shadow.info.name, version=shadow.info.version,
                 precision=shadow.info.precision, sample_rate=settings.shadow_sample_rate)
    check_reachable(settings)  # TCP, and the TLS handshake when SSL is configured
    # Every topic, before Faust starts: a consumer or producer would otherwise leave a missing one to the
    # broker's auto-creation (its own partition count, or none where auto-creation is off).
    # A loop of its own that never becomes the thread's current one: asyncio.run() would leave "no current
    # event loop" behind, and Faust's worker below asks for the current loop.
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        runner.run(ensure_topics(settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app, _runner = create_app(settings, classifier, summarizer, shadow=shadow, toxicity=toxicity)
    log.info(
        "worker_starting", worker=settings.worker_name, bootstrap=settings.bootstrap_servers,
        input=settings.input_topic, output=settings.output_topic, dlq=settings.dlq_topic,
        batch_max_size=settings.batch_max_size, batch_max_wait_ms=settings.batch_max_wait_ms,
    )
    from faust.worker import Worker

    worker = Worker(app, loglevel=settings.log_level, quiet=True, override_logging=False, redirect_stdouts=False)
    worker.spinner = None  # a terminal spinner writes escape codes into log files and pipes
    worker.execute_from_commandline()

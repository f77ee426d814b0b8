"""What the tracked runs say: which runs count (:mod:`.runs`, re-exported here, so that
``results.counted`` is the one answer for plot, report, reproduce and --dry-run), the figures
drawn from them (:mod:`.figures`, :mod:`.plots`, :mod:`.plots_events`, :mod:`.plot_kit`), the
illustrations that run a model (:mod:`.illustrations`), and the report (:mod:`.report`,
:mod:`.report_render`)."""

from .runs import (
    BEST_FIRST,
    by_point,
    counted,
    coverage,
    find,
    newest_finished,
    planned,
    preferred_scales,
    run_spec_hash,
)

__all__ = ["BEST_FIRST", "by_point", "counted", "coverage", "find", "newest_finished", "planned",
           "preferred_scales", "run_spec_hash"]

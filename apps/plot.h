#pragma once
// `tranq plot`: the training curves of a run directory (RUNDIR/metrics.jsonl) as one
// standalone SVG: loss, accuracy and, for QAT runs, transition rates, TALR and the
// oscillating / near-boundary shares.
#include <string>

namespace tranq::app {

// Reads RUNDIR/metrics.jsonl and returns the SVG document. IoError when the file cannot be
// read; FormatError naming the file and line for a line that is not a metrics object, except
// a torn last line (no trailing newline: a write cut short by a kill), which is ignored.
std::string render_run_plot(const std::string& run_dir);

// Writes render_run_plot(run_dir) to out_svg atomically.
void write_run_plot(const std::string& run_dir, const std::string& out_svg);

}  // namespace tranq::app

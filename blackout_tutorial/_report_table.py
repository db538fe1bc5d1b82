"""The Markdown table of sample-quality reports (``evaluate.real_report_markdown``,
Chapters 8-9)."""
import math


def real_report_markdown(report):
    """A Markdown table of ``{sampler: evaluate.real_report(...)}`` (Chapters 8-9): the
    real floor, each sampler and the independent-pixel baseline, means +- standard
    deviations over seeds / draws; confident fraction also as a ratio to the real
    rate."""
    def pm(r, key):
        sd = r.get(f"{key}_sd")
        return f"{r[key]:.3g}" + ("" if sd is None or not math.isfinite(sd)
                                  else f" ± {sd:.2g}")
    first = next(iter(report.values()))
    rows = ["| images | confident (>= 0.9) | vs real | min class | Fréchet proxy |",
            "|---|---|---|---|---|",
            f"| real test (N = {first['n']}, floor) | "
            f"{pm(first, 'confident_fraction_real')} | 1 | | "
            f"{pm(first, 'frechet_floor')} |"]
    for method, r in report.items():
        rows.append(f"| Blackout, {method.replace('_', ' ')} | "
                    f"{pm(r, 'confident_fraction')} | {r['confident_ratio']:.3g} | "
                    f"{r['min_class_fraction']:.3g} | {pm(r, 'frechet_proxy')} |")
    ratio = first["confident_fraction_baseline"] / max(
        first["confident_fraction_real"], 1e-12)
    rows.append(f"| independent pixels | {pm(first, 'confident_fraction_baseline')} | "
                f"{ratio:.3g} | | {pm(first, 'frechet_proxy_baseline')} |")
    return "\n".join(rows)

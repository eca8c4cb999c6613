"""Markdown tables for BENCHMARKS.md from the benchmark records (pure functions of a record).

  render_step(record)        experiments.benchmark's record (cpu_step.json): JAX vs PyTorch per model
  render_store_read(record)  experiments.store_bench's record (store_read.json): cold and warm reads
  render_gpu(record)         experiments.gpu_bench's record (gpu_step.json): steps, compile, end to end

Each table's caption names the machine, the date, the versions and the exact command of the run.
"At least 1.0×" is said only where the smallest per-round ratio of that run is at least 1.0.
"""

from __future__ import annotations

from typing import Any


def _n(x: float | None, digits: int = 0) -> str:
  if x is None:
    return "n/a"
  if abs(x) >= 100:
    return f"{x:,.0f}"
  return f"{x:.{max(digits, 1)}f}"


def _gib(b: float | None) -> str:
  return "n/a" if not b else f"{b / 2**30:.1f} GiB"


def _spread(stats: dict[str, Any]) -> str:
  return f"{_n(stats['median'])} ({_n(stats['min'])}–{_n(stats['max'])})"


def _ratio(r: dict[str, Any] | None) -> str:
  return "n/a" if not r else f"**{r['median']:.2f}** ({r['min']:.2f}–{r['max']:.2f})"


def _floor(r: dict[str, Any] | None) -> str:
  return "n/a" if not r else ("yes" if r["at_least_1"] else "no")


def caption(record: dict[str, Any]) -> str:
  m = record["machine"]
  versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
  load = ", ".join(f"{x:.2f}" for x in m.get("load_average_at_start", []))
  mem = f", {m['host_memory_bytes'] / 2**30:.0f} GiB RAM" if m.get("host_memory_bytes") else ""
  dev = "" if m["device"].startswith("cpu") else f"; {m['device_kind']} × {m['device_count']}" + (
      f" ({_gib(m.get('device_memory_bytes'))})" if m.get("device_memory_bytes") else "")
  return (f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores{mem}){dev}; load average at start {load}.  \n"
          f"Versions: {versions}.  \nCommand: `{m['command']}`")


def render_step(record: dict[str, Any]) -> str:
  """The train-step table: img/s of each side (median of rounds, min–max), the per-round ratio."""
  rows = record["rows"]
  steps = rows[0]["steps_per_round"] if rows else 0
  lines = [caption(record), "",
           f"Rounds per row: {', '.join(sorted({str(r['rounds']) for r in rows}))} of {steps} step(s) per side, "
           f"interleaved; PyTorch {record.get('torch_setup', '')}; ratio = JAX img/s ÷ PyTorch img/s per round. "
           "\"≥ 1.0×\" holds when the smallest per-round ratio is at least 1.0.", "",
           "| model | input | batch | JAX img/s median (min–max) | PyTorch img/s median (min–max) | "
           "JAX/PyTorch median (min–max) | ≥ 1.0× every round |",
           "|---|---|---|---|---|---|---|"]
  for r in rows:
    torch = _spread(r["torch"]) if "torch" in r else "not run"
    lines.append(f"| {r['model']} | {r['res']}² {r['dtype']} | {r['batch']} | {_spread(r['jax'])} | {torch} | "
                 f"{_ratio(r.get('ratio'))} | {_floor(r.get('ratio'))} |")
  return "\n".join(lines) + "\n"


def _read_rows(read: dict[str, Any]) -> list[str]:
  out = []
  for kind in ("cold", "warm"):
    s = read[kind]
    mb = sorted(s["mb_s"])[len(s["mb_s"]) // 2]
    busy = sorted(s["cores_busy"])[len(s["cores_busy"]) // 2]
    cached = [x for x in s.get("resident_at_start", []) if x is not None]
    where = f"; in the cache at the start: {100 * min(cached):.0f}–{100 * max(cached):.0f}%" if cached else ""
    out.append(f"| {kind}: {s['page_cache']}{where} | {len(s['rate'])} passes, {s['total_s']:.1f} s | {_spread(s)} | "
               f"{_n(mb)} | {busy:.2f} |")
  return out


_READ_HEAD = ["| page cache | passes, time | img/s median (min–max) | MB/s median | cores busy |",
              "|---|---|---|---|---|"]


def render_store_read(record: dict[str, Any]) -> str:
  """Cold and warm read rates of a synthetic store (one reading thread), and end to end where measured."""
  read = record["read"]
  lines = [caption(record), "",
           f"A synthetic store of {read['images_per_pass']:,} images at {read['stored_size']}² "
           f"({read['store_bytes'] / 1e6:,.0f} MB), read whole in the trainer's order, batch {read['batch']}, "
           f"{read['reading_threads']} reading thread, on {read.get('filesystem', 'unknown')}; cold and warm passes "
           "alternate.", "", *_READ_HEAD,
           *_read_rows(read)]
  if "end_to_end" in record:
    lines += ["", *_e2e_table([{**record["end_to_end"], "model": record["settings"]["e2e_model"]}])]
  if "decode" in record:
    d = record["decode"]
    lines += ["", f"Decode + augmentation of `{d['folder']}` (batch {d['batch']}, {d['cores']} cores; the DataLoader "
              f"with {d['cores']} workers), interleaved rounds:", "",
              "| tf.data img/s | DataLoader img/s | tf.data ÷ DataLoader |", "|---|---|---|",
              f"| {_spread(d['tf_data'])} | {_spread(d['torch_dataloader'])} | {_ratio(d['ratio'])} |"]
  return "\n".join(lines) + "\n"


def _e2e_table(rows: list[dict[str, Any]]) -> list[str]:
  lines = ["| model | input, batch | step only img/s | end to end img/s | end to end ÷ step only | "
           "host cores busy | store read MB/s |", "|---|---|---|---|---|---|---|"]
  for r in rows:
    e = r["end_to_end"]
    busy = sorted(e["host_cores_busy"])[len(e["host_cores_busy"]) // 2]
    mb = sorted(e["store_read_mb_s"])[len(e["store_read_mb_s"]) // 2]
    name = r["model"] + (f" (as {r['as']})" if r.get("as", r["model"]) != r["model"] else "")
    lines.append(f"| {name} | {r['image_size']}² from {r['stored_size']}², {r['batch']} | {_spread(r['step_only'])} | "
                 f"{_spread(e)} | {_ratio(r['ratio'])} | {busy:.2f} | {_n(mb)} |")
  return lines


def _xla_bytes(row: dict[str, Any]) -> int:
  """The compiled step's arguments (the donated state, reused for its outputs) and temporaries."""
  m = row.get("xla_memory_bytes") or {}
  return m.get("argument", 0) + m.get("temp", 0)


def render_gpu(record: dict[str, Any]) -> str:
  """The GPU tables: train steps with utilisation and memory, compile times, end to end, projections."""
  tiny = " (tiny CPU run: not a measurement)" if record.get("tiny") else ""
  peak = record.get("peak_flops")
  earlier = record.get("earlier_runs", [])
  runs = (f"Measured in {len(earlier) + 1} runs on this device ("
          + "; ".join(f"{m['date']}: `{m['command']}`" for m in earlier) + "; and the run above).") if earlier else ""
  lines = [caption(record) + tiny, *([runs] if runs else []), "",
           f"PyTorch: {record['torch_setup']}. Utilisation: XLA's FLOPs per step ÷ step time ÷ "
           + (f"{peak / 1e12:.0f} TFLOP/s (measured dense bf16 peak)." if peak else "n/a (no known peak).")]
  if record["rows"]:
    lines += ["", "| model | input, batch | JAX img/s median (min–max) | PyTorch img/s median (min–max) | "
              "JAX/PyTorch median (min–max) | ≥ 1.0× every round | utilisation | memory: JAX step (XLA) / "
              "JAX device peak so far / PyTorch peak |", "|---|---|---|---|---|---|---|---|"]
  for r in record["rows"]:
    torch = _spread(r["torch"]) if "torch" in r else "not run"
    util = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
    lines.append(f"| {r['model']} | {r['res']}² {r['dtype']}, {r['batch']} | {_spread(r['jax'])} | {torch} | "
                 f"{_ratio(r.get('ratio'))} | {_floor(r.get('ratio'))} | {util} | "
                 f"{_gib(_xla_bytes(r))} / {_gib(r.get('jax_device_peak_bytes'))} / {_gib(r.get('torch_peak_bytes'))} |")
  if record["compile"]:
    lines += ["", "| model | first step, empty cache (compile) | first step, warm cache (compile) |", "|---|---|---|"]
    for r in record["compile"]:
      cell = lambda d: (f"{d['first_step_s']:.1f} s ({d['compile_s']:.1f} s)" if "first_step_s" in d  # noqa: E731
                        else "failed: " + " ".join(d.get("error", [])))
      lines.append(f"| {r['model']} | {cell(r['cold'])} | {cell(r['warm'])} |")
  if record["end_to_end"]:
    lines += ["", *_e2e_table(record["end_to_end"]), "",
              "| model | store read, cold, MB/s | 90 epochs at the median (slowest round) | disk MB/s needed | "
              "reading cores needed | host cores busy |", "|---|---|---|---|---|---|"]
    for r in record["end_to_end"]:
      p = r["projection"]
      lines.append(f"| {r['model']} | {_n(p['store_cold_mb_s_measured'])} | {p['hours_at_median']:.1f} h "
                   f"({p['hours_at_slowest_round']:.1f} h) | {_n(p['disk_mb_s_needed'])} | "
                   f"{p['reading_cores_needed']:.2f} | {p['host_cores_busy_measured']:.2f} |")
  if record.get("not_run"):
    lines += ["", "Not run (time budget): " + "; ".join(f"{n['part']} {n['model']}" for n in record["not_run"]) + "."]
  return "\n".join(lines) + "\n"

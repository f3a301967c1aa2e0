/**
 * Benchmark results: rows of (figure, s3link, reference, ratio, goal, met?), printed as a table and
 * saved as JSON.
 *
 * ratio is always "s3link relative to the reference, higher is better, 1.0 = as fast": s3link/ref
 * for rates (MiB/s, ops/s), ref/s3link for durations (seconds). The reference is local disk unless
 * a section names another (the import sections: the same S3 server driven directly by the SDK).
 */
export interface Row {
  section: string
  figure: string
  unit: string
  s3link: number | null
  /** The reference's figure (local disk unless `reference` names another). */
  local: number | null
  reference?: string
  ratio: number | null
  goal: string
  met: boolean | null
  note?: string
}

/** What main.ts gives each section module (import.ts, export.ts). */
export interface SectionOptions {
  root: string
  local: string
  report: Report
  only: Set<string>
  scale: number
  daemonArgs: string[]
  log: (message: string) => void
}

export class Report {
  readonly rows: Row[] = []
  readonly errors: Array<{ section: string, error: string }> = []
  readonly info: Record<string, unknown> = {}
  /** Section → [short name for the goal column, description for the section heading]. */
  private readonly refs = new Map<string, [string, string]>()

  /** The rows of `section` compare with `short` (e.g. "raw GET") instead of local disk. */
  reference (section: string, short: string, description: string): void {
    this.refs.set(section, [short, description])
  }

  private refName (section: string): string { return this.refs.get(section)?.[0] ?? 'local' }

  /** A rate (higher is better); goalRatio: s3link must reach at least this fraction of the reference. */
  rate (section: string, figure: string, unit: string, s3link: number, local: number, goalRatio?: number, note?: string): void {
    const ratio = s3link / local
    this.rows.push({
      section, figure, unit, s3link, local, ratio, reference: this.refs.get(section)?.[0],
      goal: goalRatio === undefined ? '—' : `≥ ${goalRatio}× ${this.refName(section)}`,
      met: goalRatio === undefined ? null : ratio >= goalRatio,
      note
    })
  }

  /** A duration in seconds (lower is better); ratio = local/s3link. */
  duration (section: string, figure: string, s3link: number, local: number, goalRatio?: number, note?: string): void {
    const ratio = local / s3link
    this.rows.push({
      section, figure, unit: 's', s3link, local, ratio, reference: this.refs.get(section)?.[0],
      goal: goalRatio === undefined ? '—' : `≥ ${goalRatio}× ${this.refName(section)}`,
      met: goalRatio === undefined ? null : ratio >= goalRatio,
      note
    })
  }

  /**
   * A duration whose goal is a bound on the slowdown (at most maxTimes the reference's time); the
   * ratio stays reference/s3link like every duration, so a goal of 1.2× reads "ratio ≥ 0.83".
   */
  slowdown (section: string, figure: string, s3link: number, local: number, maxTimes: number, note?: string): void {
    this.rows.push({
      section, figure, unit: 's', s3link, local, ratio: local / s3link, reference: this.refs.get(section)?.[0],
      goal: `≤ ${maxTimes}× ${this.refName(section)}'s time`,
      met: s3link <= maxTimes * local,
      note
    })
  }

  /** An absolute figure of s3link alone, with an upper bound as goal (or none). */
  absolute (section: string, figure: string, unit: string, s3link: number, max?: number, strict = false, note?: string): void {
    this.rows.push({
      section, figure, unit, s3link, local: null, ratio: null,
      goal: max === undefined ? '—' : `${strict ? '<' : '≤'} ${max} ${unit}`,
      met: max === undefined ? null : strict ? s3link < max : s3link <= max,
      note
    })
  }

  error (section: string, err: unknown): void {
    this.errors.push({ section, error: err instanceof Error ? err.message : String(err) })
  }

  table (): string {
    const header = ['figure', 's3link', 'reference', 'ratio', 'goal', 'met?']
    const lines: string[][] = []
    let section = ''
    const sectionRows: number[] = []
    for (const r of this.rows) {
      if (r.section !== section) {
        section = r.section
        sectionRows.push(lines.length)
        const ref = this.refs.get(section)
        lines.push([`[${section}]${ref === undefined ? '' : ` — reference: ${ref[1]}`}`, '', '', '', '', ''])
      }
      lines.push([
        '  ' + r.figure,
        withUnit(r.s3link, r.unit),
        withUnit(r.local, r.unit),
        r.ratio === null ? '—' : `${fmt(r.ratio)}×`,
        r.goal,
        r.met === null ? '—' : r.met ? 'yes' : 'NO'
      ])
    }
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l, j) => sectionRows.includes(j) && i === 0 ? 0 : [...l[i]].length)))
    const pad = (s: string, w: number, right: boolean): string => {
      const n = w - [...s].length
      return right ? ' '.repeat(Math.max(0, n)) + s : s + ' '.repeat(Math.max(0, n))
    }
    const fmtLine = (l: string[]): string => l.map((c, i) => pad(c, widths[i], i > 0 && i < 4)).join('  ').trimEnd()
    const out = [fmtLine(header), widths.map((w) => '-'.repeat(w)).join('  ')]
    lines.forEach((l, j) => out.push(sectionRows.includes(j) ? l[0] : fmtLine(l)))
    const notes = this.rows.filter((r) => r.note !== undefined).map((r) => `  ${r.figure}: ${r.note as string}`)
    if (notes.length > 0) out.push('', 'notes:', ...notes)
    if (this.errors.length > 0) out.push('', 'FAILED sections:', ...this.errors.map((e) => `  [${e.section}] ${e.error}`))
    return out.join('\n')
  }
}

export function fmt (v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a >= 1000) return Math.round(v).toLocaleString('en-US')
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toPrecision(2)
}

function withUnit (v: number | null, unit: string): string {
  return v === null ? '—' : `${fmt(v)} ${unit}`
}

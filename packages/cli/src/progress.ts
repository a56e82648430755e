/**
 * Per-layer progress on a terminal: one line per layer with bytes read and throughput,
 * redrawn in place at most every 100 ms. Silent (no-op) when not enabled.
 */
import type { Io } from './io.js';

interface Row {
  label: string;
  total: number;
  done: number;
  state: string;
  startedAt: number;
  finishedAt?: number;
}

const REDRAW_MS = 100;
const MB = 1e6;

export class Progress {
  private readonly rows = new Map<string, Row>();
  private drawnLines = 0;
  private lastDraw = 0;

  constructor(
    private readonly io: Io,
    readonly enabled: boolean,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Updates a row (created on first use) and redraws when due. */
  update(key: string, change: { label?: string; total?: number; done?: number; state?: string }): void {
    if (!this.enabled) return;
    let row = this.rows.get(key);
    if (!row) {
      row = { label: change.label ?? key, total: 0, done: 0, state: '', startedAt: this.now() };
      this.rows.set(key, row);
    }
    Object.assign(row, Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)));
    if (change.state === 'done' || change.state?.startsWith('skipped')) row.finishedAt = this.now();
    const t = this.now();
    if (t - this.lastDraw >= REDRAW_MS || row.finishedAt !== undefined) {
      this.lastDraw = t;
      this.draw();
    }
  }

  /** Draws the final state. */
  finish(): void {
    if (this.enabled && this.rows.size > 0) this.draw();
  }

  private draw(): void {
    const lines = [...this.rows.values()].map((row) => formatRow(row, this.now()));
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : '';
    this.io.err(`${up}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
    this.drawnLines = lines.length;
  }
}

export function formatRow(row: Row, now: number): string {
  const seconds = ((row.finishedAt ?? now) - row.startedAt) / 1000;
  const rate = seconds > 0 ? row.done / MB / seconds : 0;
  const amount =
    row.total > 0
      ? `${(row.done / MB).toFixed(1)}/${(row.total / MB).toFixed(1)} MB`
      : `${(row.done / MB).toFixed(1)} MB`;
  const speed = row.done > 0 ? `${rate.toFixed(1)} MB/s` : '';
  return [row.label.padEnd(20), amount.padStart(18), speed.padStart(12), ` ${row.state}`].join(' ');
}

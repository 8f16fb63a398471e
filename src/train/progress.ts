/**
 * Per-epoch progress: a cli-progress bar (steps/s, loss, ETA) on a terminal, a few plain lines
 * otherwise so logs stay readable.
 */
import * as cliProgress from 'cli-progress';

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private n = 0;
  private readonly t0 = performance.now();
  private nextLine: number;

  constructor(private readonly label: string, private readonly total: number, enabled: boolean) {
    this.nextLine = Math.ceil(total / 4);
    if (!enabled) {
      this.nextLine = Infinity;
      return;
    }
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {value}/{total} | {rate} steps/s | loss {loss} | lr {lr} | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, 0, { rate: '0.0', loss: '-', lr: '-' });
    }
  }

  tick(v: { loss: number; lr: number }): void {
    this.n++;
    const rate = this.n / ((performance.now() - this.t0) / 1000);
    if (this.bar) {
      this.bar.update(this.n, { rate: rate.toFixed(1), loss: v.loss.toFixed(4), lr: v.lr.toExponential(2) });
    } else if (this.n >= this.nextLine && this.n < this.total) {
      const eta = (this.total - this.n) / rate;
      process.stderr.write(`${this.label} ${this.n}/${this.total} ${rate.toFixed(1)} steps/s loss ${v.loss.toFixed(4)} ETA ${eta.toFixed(0)}s\n`);
      this.nextLine += Math.ceil(this.total / 4);
    }
  }

  stop(): void {
    this.bar?.stop();
  }
}

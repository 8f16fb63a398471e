/**
 * `npm run bench`: training throughput (samples/s) of the native fused train step on
 * onnxruntime-node, with and without the LJ loss, and the LJ overhead in percent.
 *
 *   npm run bench -- [--preset vit-tiny-fmnist,mlp-fmnist] [--batch 64] [--threads 2] [--seconds 10] [--repeats 3] [--json FILE]
 *
 * Random inputs (throughput does not depend on pixel values); the same graph the trainer runs.
 * The arms are interleaved (base, lj, base, lj ...) and the median taken, so background load
 * hits both alike.
 */
import { Command } from 'commander';
import * as fs from 'node:fs';
import { loadPreset, validateConfig } from '../src/config';
import { buildNativeTrainStep } from '../src/artifacts/graphs';
import { Rng } from '../src/graph/rng';
import { encodeModel } from '../src/onnx/proto';
import { hyperFeeds } from '../src/optim/optimizers';
import { createSession, ort, runAll, tensor } from '../src/runtime/session';

interface Arm {
  preset: string;
  lj: boolean;
  samplesPerS: number[];
}

async function prepare(preset: string, lj: boolean, batch: number, threads: number, spinning: boolean) {
  const cfg = validateConfig(loadPreset(preset));
  cfg.lj.enabled = lj;
  const ts = buildNativeTrainStep(cfg, 'adamw');
  const sess = await createSession(encodeModel(ts.model), { threads, spinning }, 'train step');
  const rng = new Rng(7);
  const [C, H, W] = cfg.model.image;
  const x = Float32Array.from({ length: batch * C * H * W }, () => rng.normal());
  const y = BigInt64Array.from({ length: batch }, () => BigInt(rng.int(cfg.model.classes)));
  const feeds: Record<string, ort.Tensor> = {
    input: tensor('float32', x, [batch, C, H, W]),
    labels: tensor('int64', y, [batch]),
  };
  for (const p of ts.params) {
    feeds[p.value.name] = tensor('float32', Float32Array.from(p.init), p.value.shape as number[]);
  }
  for (const n of ts.stateNames) {
    const param = n.split('.').slice(2).join('.'); // opt.<slot>.<param>
    const p = ts.params.find((q) => q.value.name === param)!;
    feeds[n] = tensor('float32', new Float32Array(p.init.length), p.value.shape as number[]);
  }
  let step = 0;
  const run = async () => {
    step++;
    for (const [k, v] of Object.entries(hyperFeeds(cfg.train, 1e-3, step))) feeds[k] = tensor('float32', Float32Array.of(v), []);
    const out = await runAll(sess, feeds, 'bench step');
    // Feed the updated params/state back, as the trainer does.
    for (const [input, output] of Object.entries(ts.next)) feeds[input] = out[output];
  };
  return { run, nodes: ts.model.graph!.node!.length };
}

async function measure(run: () => Promise<void>, batch: number, seconds: number): Promise<number> {
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await run();
    n++;
  }
  return (n * batch) / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const o = new Command('bench')
    .option('--preset <list>', 'presets', 'vit-tiny-fmnist,mlp-fmnist')
    .option('--batch <b>', 'batch size', (v) => parseInt(v, 10), 64)
    .option('--threads <n>', 'intra-op threads', (v) => parseInt(v, 10), 2)
    .option('--spinning', 'let ORT threads spin-wait')
    .option('--seconds <s>', 'seconds per measurement', Number, 3)
    .option('--repeats <r>', 'measurements per arm', (v) => parseInt(v, 10), 9)
    .option('--warmup <n>', 'warm-up steps', (v) => parseInt(v, 10), 20)
    .option('--json <file>', 'also write the results as JSON')
    .parse(process.argv)
    .opts();
  const results: Arm[] = [];
  const overheads: Record<string, { median: number; pairs: number[] }> = {};
  console.log(`threads ${o.threads}, batch ${o.batch}, ${o.repeats} x ${o.seconds}s per arm, interleaved; onnxruntime-node ${require('onnxruntime-node/package.json').version}`);
  for (const preset of String(o.preset).split(',')) {
    const arms = [false, true].map((lj) => ({ preset, lj, samplesPerS: [] as number[] }));
    const runs = await Promise.all(arms.map((a) => prepare(preset, a.lj, o.batch, o.threads, !!o.spinning)));
    for (const r of runs) for (let i = 0; i < o.warmup; i++) await r.run();
    for (let k = 0; k < o.repeats; k++) {
      for (let a = 0; a < 2; a++) arms[a].samplesPerS.push(await measure(runs[a].run, o.batch, o.seconds));
    }
    const [base, lj] = arms.map((a) => median(a.samplesPerS));
    // Overhead per adjacent (baseline, LJ) pair, so slow phases of the machine hit both sides alike.
    const pairs = arms[0].samplesPerS.map((b, k) => (100 * (b - arms[1].samplesPerS[k])) / arms[1].samplesPerS[k]);
    const overhead = median(pairs);
    console.log(
      `${preset.padEnd(18)} baseline ${base.toFixed(0).padStart(6)} samples/s (${(base / o.batch).toFixed(1)} steps/s, ${runs[0].nodes} nodes)` +
        `   with LJ ${lj.toFixed(0).padStart(6)} samples/s (${runs[1].nodes} nodes)` +
        `   LJ overhead ${overhead.toFixed(1)}% of step time (median of ${pairs.length} pairs, range ${Math.min(...pairs).toFixed(1)}..${Math.max(...pairs).toFixed(1)}%)`,
    );
    overheads[preset] = { median: overhead, pairs };
    results.push(...arms);
  }
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ threads: o.threads, batch: o.batch, results, overheads }, null, 2));
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exitCode = 1;
});

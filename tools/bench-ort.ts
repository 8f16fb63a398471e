/**
 * Steps/s and peak memory of one backend on one preset: the native fused train step on
 * onnxruntime-node, or the ORT training backend (onnxruntime-web 1.19.2 training wasm, always 1
 * thread). Each invocation measures one (backend, preset) in its own process, so the peak RSS
 * (process.resourceUsage().maxRSS) is that backend's alone.
 *
 *   node dist/tools/bench-ort.js --preset mlp-fmnist --backend ort-training [--batch 64] [--threads 1] [--warmup 50] [--seconds 10]
 *   node dist/tools/bench-ort.js --all      # every preset × backend, one child process each
 *
 * Random inputs (speed does not depend on pixel values), AdamW, LJ as in the preset, the same
 * TrainBackend.step() the trainer calls (ORT: lazyResetGrad + trainStep + optimizerStep + the JS
 * moment tracking).
 */
import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { loadPreset, validateConfig } from '../src/config';
import { buildEval, buildNativeTrainStep, nextName } from '../src/artifacts/graphs';
import { buildOrtFromConfig, ortOptimizerModel } from '../src/artifacts/ort-build';
import { Rng } from '../src/graph/rng';
import { encodeModel } from '../src/onnx/proto';
import { stateName, stateSlots } from '../src/optim/optimizers';
import { OrtTrainBackend } from '../src/train/ort-backend';
import { initialState, paramsFromBuilder } from '../src/train/state';
import { NativeBackend, TrainBackend } from '../src/train/trainer';

interface Result {
  preset: string;
  backend: string;
  threads: number;
  batch: number;
  steps: number;
  stepsPerS: number;
  samplesPerS: number;
  peakRssMiB: number;
}

async function bench(preset: string, backend: string, batch: number, threads: number, warmup: number, seconds: number): Promise<Result> {
  const cfg = validateConfig(loadPreset(preset));
  let be: TrainBackend;
  let state;
  if (backend === 'native') {
    const ts = buildNativeTrainStep(cfg, 'adamw');
    const next = new Map<string, string>();
    for (const p of ts.params) {
      next.set(p.value.name, nextName(p.value.name));
      for (const s of stateSlots('adamw')) next.set(stateName(s, p.value.name), nextName(stateName(s, p.value.name)));
    }
    state = initialState(paramsFromBuilder(ts.params), 'adamw', 1, next);
    be = await NativeBackend.create(cfg, state, encodeModel(ts.model), encodeModel(buildEval(cfg)), { threads });
  } else {
    const art = buildOrtFromConfig(cfg);
    state = initialState([...art.state.params].map(([name, p]) => ({ name, shape: p.shape, data: p.data })), 'adamw', 1, new Map());
    be = await OrtTrainBackend.create(cfg, state, { trainingModel: encodeModel(art.trainingModel), evalModel: encodeModel(art.evalModel), optimizerModel: encodeModel(ortOptimizerModel(cfg.train, cfg.train.lr)) });
    threads = 1;
  }
  const rng = new Rng(7);
  const [C, H, W] = cfg.model.image;
  const x = Float32Array.from({ length: batch * C * H * W }, () => rng.normal());
  const y = BigInt64Array.from({ length: batch }, () => BigInt(rng.int(cfg.model.classes)));
  const dims = [batch, C, H, W];
  const step = async () => {
    await be.step(x, y, dims, cfg.train.lr);
    state.step++;
  };
  for (let i = 0; i < warmup; i++) await step();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await step();
    n++;
  }
  const dt = (performance.now() - t0) / 1000;
  await be.sync();
  await be.release();
  return { preset, backend, threads, batch, steps: n, stepsPerS: n / dt, samplesPerS: (n * batch) / dt, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--preset <p>', 'preset', 'mlp-fmnist')
    .option('--backend <b>', 'native or ort-training', 'ort-training')
    .option('--batch <n>', 'batch', (v) => Number(v), 64)
    .option('--threads <n>', 'native intra-op threads', (v) => Number(v), 1)
    .option('--warmup <n>', 'warm-up steps', (v) => Number(v), 50)
    .option('--seconds <s>', 'measured seconds', (v) => Number(v), 10)
    .option('--all', 'every preset x backend (mlp-fmnist, vit-tiny-fmnist; native 1 and 2 threads, ort-training), each in its own process')
    .parse()
    .opts();
  if (o.all) {
    const rows: Result[] = [];
    for (const preset of ['mlp-fmnist', 'vit-tiny-fmnist']) {
      for (const [backend, threads] of [['native', 1], ['native', 2], ['ort-training', 1]] as const) {
        const r = spawnSync(process.execPath, [__filename, '--preset', preset, '--backend', backend, '--threads', String(threads), '--batch', String(o.batch), '--warmup', String(o.warmup), '--seconds', String(o.seconds)], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`${preset} ${backend}: ${r.stderr}`);
        rows.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
      }
    }
    console.log('| preset | backend | threads | batch | steps/s | samples/s | peak RSS (MiB) |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.preset} | ${r.backend} | ${r.threads} | ${r.batch} | ${r.stepsPerS.toFixed(1)} | ${r.samplesPerS.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} |`);
    return;
  }
  console.log(JSON.stringify(await bench(o.preset, o.backend, o.batch, o.threads, o.warmup, o.seconds)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

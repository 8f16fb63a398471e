import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as flatbuffers from 'flatbuffers';
import {
  Checkpoint,
  CheckpointError,
  checkParamsMatch,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from '../../src/artifacts/checkpoint';
import { Checkpoint as FbCheckpoint, ModuleState, Tensor as FbTensor, TensorDataType } from '../../src/artifacts/generated/fbs/ort_training_checkpoint_generated';

const f32 = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => k * (i - n / 3) * 0.25);

function sample(): Checkpoint {
  return {
    requiresGradParams: [
      { name: 'fc.weight', dims: [3, 2], data: f32(6) },
      { name: 'fc.bias', dims: [2], data: f32(2, -1) },
    ],
    frozenParams: [{ name: 'fc.scale', dims: [2], data: Float32Array.of(1.5, -0.5) }],
    optimizer: {
      step: 7,
      initialLearningRate: 0.0025,
      states: [
        { paramName: 'fc.weight', momentums: [{ name: 'momentum0', dims: [3, 2], data: f32(6, 0.1) }, { name: 'momentum1', dims: [3, 2], data: f32(6, 0.01) }] },
        { paramName: 'fc.bias', momentums: [{ name: 'momentum0', dims: [2], data: f32(2, 0.2) }, { name: 'momentum1', dims: [2], data: f32(2, 0.02) }] },
      ],
    },
    properties: { ints: { epoch: 3, best_step: 9007199254740991 }, floats: { best_acc: 0.8125 }, strings: { preset: 'fashion-mnist-mlp', note: 'ünïcödé' } },
  };
}

function hand(builderFn: (b: flatbuffers.Builder) => flatbuffers.Offset, ident = 'ODTC'): Uint8Array {
  const b = new flatbuffers.Builder(256);
  b.finish(builderFn(b), ident);
  return b.asUint8Array().slice();
}

/** A minimal checkpoint built directly with the generated API (for cases our writer refuses to produce). */
function rawCheckpoint(o: { version?: number; dataType?: TensorDataType; dims?: bigint[]; raw?: Uint8Array }): Uint8Array {
  return hand((b) => {
    const name = b.createString('w');
    const dims = FbTensor.createDimsVector(b, o.dims ?? [2n]);
    const raw = b.createByteVector(o.raw ?? new Uint8Array(8));
    FbTensor.startTensor(b);
    FbTensor.addName(b, name);
    FbTensor.addDims(b, dims);
    FbTensor.addDataType(b, o.dataType ?? TensorDataType.FLOAT);
    FbTensor.addRawData(b, raw);
    const t = FbTensor.endTensor(b);
    const rg = ModuleState.createRequiresGradParamsVector(b, [t]);
    const fz = ModuleState.createFrozenParamsVector(b, []);
    const ms = ModuleState.createModuleState(b, rg, fz, false, false);
    FbCheckpoint.startCheckpoint(b);
    FbCheckpoint.addVersion(b, o.version ?? 2);
    FbCheckpoint.addModuleState(b, ms);
    return FbCheckpoint.endCheckpoint(b);
  });
}

describe('ODTC checkpoint', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ljtrain-ckpt-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips parameters, frozen parameters, moments, step and properties', () => {
    const c = sample();
    const file = path.join(dir, 'checkpoint');
    writeCheckpoint(file, c);
    const r = readCheckpoint(file);
    expect(r.requiresGradParams.map((t) => t.name)).to.deep.equal(['fc.weight', 'fc.bias']);
    for (let i = 0; i < 2; i++) {
      expect(r.requiresGradParams[i].dims).to.deep.equal(c.requiresGradParams[i].dims);
      expect(Array.from(r.requiresGradParams[i].data)).to.deep.equal(Array.from(c.requiresGradParams[i].data));
    }
    expect(r.frozenParams).to.have.length(1);
    expect(r.frozenParams[0].name).to.equal('fc.scale');
    expect(Array.from(r.frozenParams[0].data)).to.deep.equal([1.5, -0.5]);
    expect(r.optimizer!.step).to.equal(7);
    expect(r.optimizer!.initialLearningRate).to.be.closeTo(0.0025, 1e-9);
    expect(r.optimizer!.states.map((s) => s.paramName)).to.deep.equal(['fc.weight', 'fc.bias']);
    expect(r.optimizer!.states[0].momentums.map((m) => m.name)).to.deep.equal(['momentum0', 'momentum1']);
    expect(Array.from(r.optimizer!.states[1].momentums[1].data)).to.deep.equal(Array.from(c.optimizer!.states[1].momentums[1].data));
    expect(r.properties.ints).to.deep.equal({ epoch: 3, best_step: 9007199254740991 });
    expect(r.properties.floats.best_acc).to.equal(0.8125);
    expect(r.properties.strings).to.deep.equal({ preset: 'fashion-mnist-mlp', note: 'ünïcödé' });
  });

  it('round-trips a checkpoint without optimizer state or properties, and empty parameter lists', () => {
    const bytes = encodeCheckpoint({ requiresGradParams: [{ name: 'p', dims: [], data: Float32Array.of(3) }], frozenParams: [], properties: { ints: {}, floats: {}, strings: {} } });
    const r = decodeCheckpoint(bytes);
    expect(r.optimizer).to.equal(undefined);
    expect(r.frozenParams).to.deep.equal([]);
    expect(r.requiresGradParams[0].dims).to.deep.equal([]);
    expect(Array.from(r.requiresGradParams[0].data)).to.deep.equal([3]);
  });

  it('writes the ODTC identifier, version 2, group0 and both parameter vectors', () => {
    const bytes = encodeCheckpoint(sample());
    expect(Buffer.from(bytes.subarray(4, 8)).toString('latin1')).to.equal('ODTC');
    const root = FbCheckpoint.getRootAsCheckpoint(new flatbuffers.ByteBuffer(bytes));
    expect(root.version()).to.equal(2);
    expect(root.optimizerGroups(0)!.groupName()).to.equal('group0');
    expect(root.moduleState()!.frozenParamsLength()).to.equal(1);
    const empty = encodeCheckpoint({ requiresGradParams: [{ name: 'p', dims: [1], data: Float32Array.of(1) }], frozenParams: [], properties: { ints: {}, floats: {}, strings: {} } });
    const ms = FbCheckpoint.getRootAsCheckpoint(new flatbuffers.ByteBuffer(empty)).moduleState()!;
    // ORT wants the frozen vector present even when empty.
    expect(ms.frozenParamsLength()).to.equal(0);
    expect(ms.bb!.__offset(ms.bb_pos, 6)).to.not.equal(0);
  });

  it('is deterministic (same checkpoint, same bytes)', () => {
    expect(Buffer.from(encodeCheckpoint(sample())).equals(Buffer.from(encodeCheckpoint(sample())))).to.equal(true);
  });

  it('writes atomically: replaces the old file and leaves no temporary file', () => {
    const file = path.join(dir, 'checkpoint');
    fs.writeFileSync(file, 'old contents');
    writeCheckpoint(file, sample());
    expect(fs.readdirSync(dir)).to.deep.equal(['checkpoint']);
    expect(readCheckpoint(file).optimizer!.step).to.equal(7);
  });

  it('leaves the old file untouched when the checkpoint is invalid', () => {
    const file = path.join(dir, 'checkpoint');
    writeCheckpoint(file, sample());
    const before = fs.readFileSync(file);
    const bad = sample();
    bad.requiresGradParams[0].data = new Float32Array(5);
    expect(() => writeCheckpoint(file, bad)).to.throw(CheckpointError, /cannot write checkpoint .*checkpoint.*fc\.weight has 5 values for dims \[3,2\]/);
    expect(fs.readFileSync(file).equals(before)).to.equal(true);
    expect(fs.readdirSync(dir)).to.deep.equal(['checkpoint']);
  });

  it('refuses to write into a missing directory with a clear message and no stray files', () => {
    const file = path.join(dir, 'nope', 'checkpoint');
    expect(() => writeCheckpoint(file, sample())).to.throw(CheckpointError, /cannot write checkpoint .*nope/);
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('refuses invalid checkpoints on write: duplicate names, moments of unknown params, bad moment shapes', () => {
    const dup = sample();
    dup.frozenParams[0].name = 'fc.weight';
    expect(() => encodeCheckpoint(dup)).to.throw(/fc\.weight appears more than once/);
    const orphan = sample();
    orphan.optimizer!.states[0].paramName = 'fc.scale';
    expect(() => encodeCheckpoint(orphan)).to.throw(/optimizer state for fc\.scale, which is not a requires-grad parameter/);
    const shape = sample();
    shape.optimizer!.states[1].momentums[0].dims = [1, 2];
    expect(() => encodeCheckpoint(shape)).to.throw(/fc\.bias\.momentum0 has dims \[1,2\], the parameter has \[2\]/);
    const props = sample();
    props.properties.floats.epoch = 1;
    expect(() => encodeCheckpoint(props)).to.throw(/property epoch is defined with more than one type/);
  });

  describe('refuses to read', () => {
    const write = (name: string, bytes: Uint8Array) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      return f;
    };

    it('a missing file', () => {
      expect(() => readCheckpoint(path.join(dir, 'absent'))).to.throw(CheckpointError, /cannot read checkpoint .*absent/);
    });

    it('an empty or tiny file', () => {
      const f = write('tiny', new Uint8Array([1, 2, 3]));
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, new RegExp(`checkpoint ${f} is not an ORT training checkpoint: 3 bytes is too short`));
    });

    it('a truncated file (at many cut points)', () => {
      const full = encodeCheckpoint(sample());
      // (The last few bytes can be alignment padding after the first-written string, which no reader
      // can miss; length - 9 always cuts into that string's bytes or its NUL.)
      for (const cut of [8, 16, 40, Math.floor(full.length / 3), Math.floor(full.length / 2), full.length - 20, full.length - 9]) {
        const f = write(`cut${cut}`, full.subarray(0, cut));
        expect(() => readCheckpoint(f), `cut at ${cut}`).to.throw(CheckpointError, new RegExp(`checkpoint ${f} (is truncated or corrupt|has )`));
      }
      // the common message for a cut file
      const f = write('half', full.subarray(0, Math.floor(full.length / 2)));
      expect(() => readCheckpoint(f)).to.throw(/is truncated or corrupt: .*outside the \d+-byte buffer|is truncated or corrupt/);
    });

    it('a flatbuffer with another file identifier', () => {
      const bytes = encodeCheckpoint(sample());
      bytes.set([0x4f, 0x52, 0x54, 0x4d], 4); // 'ORTM', an ORT format model
      const f = write('ortm', bytes);
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, new RegExp(`checkpoint ${f} is not an ORT training checkpoint: file identifier is 'ORTM', expected 'ODTC'`));
    });

    it('garbage bytes', () => {
      const rnd = Uint8Array.from({ length: 300 }, (_, i) => (i * 2654435761) >>> 24);
      const f = write('garbage', rnd);
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, /is not an ORT training checkpoint: file identifier is 0x[0-9a-f]{8}/);
      // garbage behind a correct identifier: refused as corrupt, never half-read
      for (let seed = 1; seed <= 40; seed++) {
        let s = seed;
        const g = Uint8Array.from({ length: 64 + seed * 13 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
        g.set([0x4f, 0x44, 0x54, 0x43], 4);
        const fg = write(`g${seed}`, g);
        expect(() => readCheckpoint(fg), `seed ${seed}`).to.throw(CheckpointError, new RegExp(`checkpoint ${fg} `));
      }
      // a text file
      const ft = write('text', new TextEncoder().encode('{"this": "is json, not a checkpoint"}\n'));
      expect(() => readCheckpoint(ft)).to.throw(CheckpointError, /not an ORT training checkpoint: file identifier is 'is":'/);
    });

    it('a wrong format version', () => {
      const f = write('v1', rawCheckpoint({ version: 1 }));
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, new RegExp(`checkpoint ${f} has checkpoint format version 1; only version 2`));
      const f3 = write('v3', rawCheckpoint({ version: 3 }));
      expect(() => readCheckpoint(f3)).to.throw(/format version 3; only version 2/);
    });

    it('an unsupported tensor data type', () => {
      const f = write('f16', rawCheckpoint({ dataType: TensorDataType.FLOAT16, raw: new Uint8Array(4) }));
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, new RegExp(`checkpoint ${f}: tensor w has data type FLOAT16 \\(10\\); only FLOAT \\(1\\) is supported`));
    });

    it('raw_data whose length does not match the dims', () => {
      const f = write('short', rawCheckpoint({ dims: [3n], raw: new Uint8Array(8) }));
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, new RegExp(`checkpoint ${f}: tensor w has 8 bytes of raw_data, dims \\[3\\] need 12`));
    });

    it('a file that ORT itself would reject: an ODTC buffer from the wrong schema', () => {
      // A valid flatbuffer with the right identifier whose root is some other table.
      const bytes = hand((b) => {
        const s = b.createString('not a checkpoint');
        b.startObject(1);
        b.addFieldOffset(0, s, 0);
        return b.endObject();
      });
      const f = write('other', bytes);
      expect(() => readCheckpoint(f)).to.throw(CheckpointError, new RegExp(`checkpoint ${f} `));
    });
  });

  describe('checkParamsMatch', () => {
    it('passes when names and shapes agree (in any order)', () => {
      expect(() => checkParamsMatch(sample(), [{ name: 'fc.scale', shape: [2] }, { name: 'fc.bias', shape: [2] }, { name: 'fc.weight', shape: [3, 2] }])).to.not.throw();
    });

    it('lists missing names, extra names and shape mismatches together', () => {
      const expected = [
        { name: 'fc.weight', shape: [2, 3] },
        { name: 'fc.bias', shape: [2] },
        { name: 'head.weight', shape: [2, 10] },
      ];
      let msg = '';
      try {
        checkParamsMatch(sample(), expected, 'checkpoint run/ckpt');
      } catch (e) {
        expect(e).to.be.instanceOf(CheckpointError);
        msg = (e as Error).message;
      }
      expect(msg).to.match(/^checkpoint run\/ckpt does not match the model's parameters/);
      expect(msg).to.contain('missing from the checkpoint: head.weight');
      expect(msg).to.contain('not in the model: fc.scale');
      expect(msg).to.contain('shape mismatch: fc.weight: checkpoint [3,2], model [2,3]');
    });
  });
});

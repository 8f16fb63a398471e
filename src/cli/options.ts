/** Strict option parsers: a bad value becomes a one-line error naming the option. */
import { InvalidArgumentError } from 'commander';

export function num(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new InvalidArgumentError(`--${name} must be a number, got '${v}'`);
    return x;
  };
}

export function posInt(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(x) || x <= 0) throw new InvalidArgumentError(`--${name} must be a positive integer, got '${v}'`);
    return x;
  };
}

export function intList(name: string) {
  return (v: string): number[] => {
    const parts = v.split(',').map((s) => s.trim());
    if (parts.some((p) => !/^-?\d+$/.test(p))) throw new InvalidArgumentError(`--${name} must be a comma-separated list of integers, got '${v}'`);
    return parts.map(Number);
  };
}

export function choice<T extends string>(name: string, options: readonly T[]) {
  return (v: string): T => {
    if (!(options as readonly string[]).includes(v)) throw new InvalidArgumentError(`--${name} must be one of ${options.join(', ')}, got '${v}'`);
    return v as T;
  };
}

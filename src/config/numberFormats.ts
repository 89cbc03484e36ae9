/**
 * Strict numbers for convict. Its own formats read a string (an environment variable, or a
 * quoted value in the file) with parseInt or parseFloat, which stop at the first character they
 * cannot read: `4x` became 4, `1e1` 1, `0x10` 0, `0.1x` 0.1. These formats take the whole string
 * or nothing: a string that is not entirely a number (spaces around it aside) is left as it is,
 * so the format's check refuses it with its usual message and the value is quoted beside the
 * variable that gave it. A number the file gives as a number is checked as it is.
 */
import type convict from 'convict';

/** `12`, `+12`, `-12`: whole numbers only (no exponent, no fraction, no hex). */
const INTEGER = /^[+-]?[0-9]+$/;
/** `0.1`, `.5`, `1e-1`, `-2`: a decimal number as written in most config files; no hex, no Infinity. */
const DECIMAL = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** The whole of `value` as an integer; the string unchanged when it is not one (or not a safe integer). */
function strictInteger(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim();
  if (!INTEGER.test(v)) return value;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : value;
}

/** The whole of `value` as a finite number; the string unchanged when it is not one. */
function strictDecimal(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim();
  if (!DECIMAL.test(v)) return value;
  const n = Number(v);
  return Number.isFinite(n) ? n : value;
}

const isInteger = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);

/**
 * convict's numeric formats (`int`, `integer`, `nat`, `port`, and `number`, which a `Number`
 * format stands for), with the same checks and messages as convict's, read strictly. Registered
 * under convict's own names, so every numeric key of the schema, present or future, reads this way.
 */
export const NUMBER_FORMATS: convict.Format[] = [
  {
    name: 'int',
    validate: (x: unknown) => {
      if (!isInteger(x)) throw new Error('must be an integer');
    },
    coerce: strictInteger,
  },
  {
    name: 'integer',
    validate: (x: unknown) => {
      if (!isInteger(x)) throw new Error('must be an integer');
    },
    coerce: strictInteger,
  },
  {
    name: 'nat',
    validate: (x: unknown) => {
      if (!isInteger(x) || x < 0) throw new Error('must be a positive integer');
    },
    coerce: strictInteger,
  },
  {
    name: 'port',
    validate: (x: unknown) => {
      if (!isInteger(x) || x < 0 || x > 65535) throw new Error('must be a port from 0 to 65535');
    },
    coerce: strictInteger,
  },
  {
    name: 'number',
    validate: (x: unknown) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error('must be a number');
    },
    coerce: strictDecimal,
  },
];

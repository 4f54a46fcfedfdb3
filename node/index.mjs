// ESM entry: the same objects as the CommonJS one (one addon, one class identity).
import cjs from './index.js'

export const { Store, Baseline, SessionkeeperStore, generateId, isValidId, isValidHandle, sign, unsign, isSessionkeeperError, ERROR_CODES } = cjs
export default cjs

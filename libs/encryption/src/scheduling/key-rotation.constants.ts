/** Name of the interval `KeyRotationScheduler` registers in `SchedulerRegistry`. */
export const KEY_ROTATION_INTERVAL_NAME = 'nestjs-encryption:key-rotation';

import { Inject } from '@nestjs/common';

import { ENCRYPTION_OPTIONS } from '../encryption.constants.js';

/** Injects the resolved `ResolvedEncryptionOptions`, with defaults applied. */
export const InjectEncryptionOptions = (): ParameterDecorator => Inject(ENCRYPTION_OPTIONS);

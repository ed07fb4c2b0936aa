import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import {
  Controller,
  Get,
  Headers,
  HttpCode,
  InternalServerErrorException,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Req,
  Res,
  UnsupportedMediaTypeException,
} from '@nestjs/common';

import type { StoredFile } from './encrypted-files.store.js';
import { EncryptedFilesStore } from './encrypted-files.store.js';

/**
 * `POST /files` streams an upload (`Content-Type: application/octet-stream`) to disk encrypted;
 * `GET /files/:id` streams it back decrypted. Neither holds a whole file in memory.
 */
@Controller('files')
export class FilesController {
  constructor(private readonly files: EncryptedFilesStore) {}

  @Post()
  @HttpCode(201)
  async upload(@Req() request: unknown, @Headers('content-type') contentType?: string): Promise<StoredFile> {
    if (contentType?.split(';')[0].trim().toLowerCase() !== 'application/octet-stream') {
      throw new UnsupportedMediaTypeException('Upload the file as application/octet-stream');
    }
    return this.files.save(uploadStream(request));
  }

  @Get(':id')
  async download(@Param('id', ParseUUIDPipe) id: string, @Res() response: unknown): Promise<void> {
    const decrypted = await this.files.open(id);
    if (!decrypted) throw new NotFoundException(`No file ${id}`);
    try {
      // Wait for the first authenticated chunk (or the end): a file that fails at once gets a clean 500.
      await firstReadable(decrypted);
    } catch {
      throw new InternalServerErrorException('The stored file failed authentication');
    }
    const raw = rawResponse(response);
    raw.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    // A later failure destroys the connection: the client sees an incomplete download, never a clean end.
    await pipeline(decrypted, raw).catch(() => raw.destroy());
  }
}

/** Express hands over the request itself; Fastify the payload its octet-stream parser passed through. */
function uploadStream(request: unknown): Readable {
  const body = (request as { body?: unknown }).body;
  if (body instanceof Readable) return body;
  if (request instanceof Readable) return request;
  throw new UnsupportedMediaTypeException('Upload the file as application/octet-stream');
}

/** Node's response: Express's is one; a Fastify reply is hijacked so Fastify leaves it to us. */
function rawResponse(response: unknown): ServerResponse {
  const reply = response as { raw?: ServerResponse; hijack?: () => void };
  if (reply.raw && typeof reply.hijack === 'function') {
    reply.hijack();
    return reply.raw;
  }
  return response as ServerResponse;
}

function firstReadable(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      stream.off('readable', onReadable);
      stream.off('error', done);
      if (error) reject(error);
      else resolve();
    };
    const onReadable = () => done();
    stream.on('readable', onReadable);
    stream.on('error', done);
  });
}

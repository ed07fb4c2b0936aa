import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';

import type { ClassRef } from './encrypted-fields.metadata.js';
import { isUserClass } from './encrypted-fields.metadata.js';

/** One `@Body()` parameter of a handler whose type is a class: the whole body, or `body[property]`. */
export interface BodyParamType {
  property?: string;
  type: ClassRef;
}

interface RouteArgMetadata {
  index: number;
  data?: unknown;
}

const BODY_KEY_PREFIX = `${RouteParamtypes.BODY}:`;
const byHandler = new WeakMap<ClassRef, WeakMap<ClassRef, readonly BodyParamType[]>>();

/**
 * The class-typed `@Body()` parameters of a handler, read the way Nest's router reads them: the
 * route-argument metadata of the class that declared the method, and its `design:paramtypes`.
 * Computed once per controller class and handler.
 */
export function bodyParamTypesOf(controller: ClassRef, handler: ClassRef): readonly BodyParamType[] {
  let cache = byHandler.get(controller);
  if (!cache) byHandler.set(controller, (cache = new WeakMap()));
  let params = cache.get(handler);
  if (!params) cache.set(handler, (params = read(controller, handler)));
  return params;
}

function read(controller: ClassRef, handler: ClassRef): readonly BodyParamType[] {
  const methodName = methodNameOf(controller, handler);
  if (methodName === undefined) return [];
  const host = paramsHostOf(controller, methodName);
  const args: Record<string, RouteArgMetadata> = Reflect.getMetadata(ROUTE_ARGS_METADATA, host, methodName) ?? {};
  const paramTypes: unknown[] =
    Reflect.getMetadata('design:paramtypes', host.prototype as object, methodName) ??
    Reflect.getMetadata('design:paramtypes', controller.prototype as object, methodName) ??
    [];
  const params: BodyParamType[] = [];
  for (const [key, { index, data }] of Object.entries(args)) {
    const type = paramTypes[index];
    if (!key.startsWith(BODY_KEY_PREFIX) || !isUserClass(type)) continue;
    const property = typeof data === 'string' ? data : undefined;
    if (!params.some((param) => param.type === type && param.property === property)) params.push({ property, type });
  }
  return params;
}

/** The name the handler has on the controller: its own name, unless a mixin or bind renamed it. */
function methodNameOf(controller: ClassRef, handler: ClassRef): string | undefined {
  const prototype = controller.prototype as Record<string, unknown>;
  if (handler.name && prototype[handler.name] === handler) return handler.name;
  for (let proto: object | null = prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    const name = Object.getOwnPropertyNames(proto).find((candidate) => {
      const descriptor = Object.getOwnPropertyDescriptor(proto, candidate);
      return descriptor !== undefined && 'value' in descriptor && descriptor.value === handler;
    });
    if (name !== undefined) return name;
  }
  return undefined;
}

/** As Nest's `getParamsHost`: the class that declared the method holds its parameter metadata. */
function paramsHostOf(controller: ClassRef, methodName: string): ClassRef {
  const prototype = controller.prototype as Record<string, unknown>;
  const declared = (prototype as { constructor?: unknown }).constructor;
  if (typeof declared === 'function' && (declared.prototype as Record<string, unknown> | undefined)?.[methodName] === prototype[methodName]) {
    return declared;
  }
  return controller;
}

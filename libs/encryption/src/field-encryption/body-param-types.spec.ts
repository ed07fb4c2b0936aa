import 'reflect-metadata';

import { Body, Controller, createParamDecorator, Param, Post, Query } from '@nestjs/common';

import { bodyParamTypesOf } from './body-param-types.js';

class CreateDto {
  name!: string;
}
class PartDto {
  part!: string;
}
const Custom = createParamDecorator(() => 'custom');

@Controller()
class Base {
  @Post('inherited')
  inherited(@Body() dto: CreateDto): CreateDto {
    return dto;
  }
}

@Controller()
class Sample extends Base {
  @Post('whole')
  whole(@Param('id') id: string, @Body() dto: CreateDto, @Query() query: PartDto): unknown {
    return [id, dto, query];
  }

  @Post('parts')
  parts(@Body('a') a: PartDto, @Body('b') b: CreateDto, @Body('raw') raw: string): unknown {
    return [a, b, raw];
  }

  @Post('none')
  none(@Body() body: Record<string, unknown>, @Custom() custom: CreateDto): unknown {
    return [body, custom];
  }
}

describe('bodyParamTypesOf', () => {
  it('finds the class of a whole-body @Body() parameter, and only of @Body()', () => {
    expect(bodyParamTypesOf(Sample, Sample.prototype.whole)).toEqual([{ property: undefined, type: CreateDto }]);
  });

  it('finds @Body(property) parameters with their property, and skips primitives', () => {
    expect(bodyParamTypesOf(Sample, Sample.prototype.parts)).toEqual(
      expect.arrayContaining([
        { property: 'a', type: PartDto },
        { property: 'b', type: CreateDto },
      ]),
    );
    expect(bodyParamTypesOf(Sample, Sample.prototype.parts)).toHaveLength(2);
  });

  it('ignores bodies typed as Object and custom parameter decorators', () => {
    expect(bodyParamTypesOf(Sample, Sample.prototype.none)).toEqual([]);
  });

  it('reads handlers a controller inherits', () => {
    expect(bodyParamTypesOf(Sample, Sample.prototype.inherited)).toEqual([{ property: undefined, type: CreateDto }]);
  });

  it('finds a handler whose function name differs from its method name', () => {
    const renamed = Sample.prototype.whole;
    Object.defineProperty(renamed, 'name', { value: 'somethingElse' });
    class Fresh extends Sample {}
    expect(bodyParamTypesOf(Fresh, renamed)).toEqual([{ property: undefined, type: CreateDto }]);
  });

  it('finds nothing for a function that is not a handler of the class', () => {
    expect(bodyParamTypesOf(Sample, function stray() {})).toEqual([]);
  });
});

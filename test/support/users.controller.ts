import { Controller, Get, Param, ParseIntPipe, UseFilters, UsePipes, ValidationPipe } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { IsInt, IsString, Min, MinLength } from 'class-validator';
import { ErpsExceptionFilter } from 'nestjs-erps';

export class RegisterUserDto {
  @IsString()
  @MinLength(3)
  name!: string;

  @IsInt()
  @Min(0)
  age!: number;
}

/** The users service of a hybrid app: an Erps call with a validated DTO, and HTTP routes of its own. */
@Controller()
export class UsersController {
  @MessagePattern('user.register')
  @UsePipes(new ValidationPipe())
  register(@Payload() user: RegisterUserDto): { registered: string } {
    return { registered: user.name };
  }

  @MessagePattern('user.crash')
  crashCall(): never {
    throw new Error('secret internal detail');
  }

  @Get('users/:id')
  find(@Param('id', ParseIntPipe) id: number): { id: number } {
    return { id };
  }

  @Get('crash')
  crash(): never {
    throw new Error('secret internal detail');
  }
}

/** The same service with the filter bound by `@UseFilters` on the controller. */
@Controller()
@UseFilters(ErpsExceptionFilter)
export class FilteredUsersController extends UsersController {}

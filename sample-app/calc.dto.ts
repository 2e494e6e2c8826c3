import { IsInt, IsString, Max, Min, MinLength } from 'class-validator';

/** What 'user.register' accepts; ValidationPipe rejects anything else with readable messages. */
export class RegisterUserDto {
  @IsString()
  @MinLength(3)
  name!: string;

  @IsInt()
  @Min(0)
  @Max(150)
  age!: number;
}

//! The `calculator` tool: a real arithmetic expression parser (recursive
//! descent over tokens — it never evaluates code), exact with rationals
//! wherever the operations allow and in `f64` otherwise.
//!
//! Syntax: numbers (`2340`, `2,340` with thousands separators outside
//! function arguments, `17.5`, `1e3`), `+ - * / ^` (also `− × ÷ **`),
//! `a % b` and `a mod b` (remainder), postfix `x%` (percent: `x/100`), `x% of y`
//! (`of` multiplies), postfix `!` (factorial), parentheses, the constants
//! `pi`/`π`, `e`, `tau`, and the functions `sqrt cbrt abs exp ln log log10
//! log2 round floor ceil trunc min max pow sin cos tan asin acos atan`
//! (`log(x)` is base 10, `log(x, b)` base `b`, `round(x, n)` to `n` decimals).
//! `^` is right-associative and binds tighter than unary minus (`-2^2 = -4`).

use std::fmt;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 2000;
/// Deepest nesting of parentheses, unary signs and powers.
const MAX_DEPTH: usize = 64;

/// Why an expression could not be evaluated (shown to the model as the
/// tool's observation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalcError(pub String);

impl fmt::Display for CalcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CalcError {}

type CResult<T> = std::result::Result<T, CalcError>;

fn err<T>(m: impl Into<String>) -> CResult<T> {
    Err(CalcError(m.into()))
}

/// A value: an exact fraction (reduced, positive denominator) or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// `num / den`, exact.
    Exact(i128, i128),
    /// An approximation.
    Float(f64),
}

/// The greatest common divisor of `|a|` and `|b|` (1 when it does not fit:
/// only for i128::MIN, where not reducing is harmless).
fn gcd(a: i128, b: i128) -> i128 {
    let (mut x, mut y) = (a.unsigned_abs(), b.unsigned_abs());
    while y != 0 {
        (x, y) = (y, x % y);
    }
    i128::try_from(x).unwrap_or(1)
}

impl Number {
    fn ratio(num: i128, den: i128) -> CResult<Number> {
        if den == 0 {
            return err("division by zero");
        }
        let g = gcd(num, den).max(1);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            match (n.checked_neg(), d.checked_neg()) {
                (Some(a), Some(b)) => (n, d) = (a, b),
                _ => return Ok(Number::Float(num as f64 / den as f64)),
            }
        }
        Ok(Number::Exact(n, d))
    }

    fn int(n: i128) -> Number {
        Number::Exact(n, 1)
    }

    /// The value as a float.
    pub fn to_f64(self) -> f64 {
        match self {
            Number::Exact(n, d) => n as f64 / d as f64,
            Number::Float(x) => x,
        }
    }

    fn as_integer(self) -> Option<i128> {
        match self {
            Number::Exact(n, 1) => Some(n),
            Number::Float(x) if x.fract() == 0.0 && x.abs() < 1e30 => Some(x as i128),
            _ => None,
        }
    }

    fn checked(self) -> CResult<Number> {
        match self {
            Number::Float(x) if !x.is_finite() => err("the result is not a finite number"),
            n => Ok(n),
        }
    }

    fn add(self, o: Number) -> CResult<Number> {
        if let (Number::Exact(a, b), Number::Exact(c, d)) = (self, o) {
            let exact = (|| {
                let n = a.checked_mul(d)?.checked_add(c.checked_mul(b)?)?;
                Some((n, b.checked_mul(d)?))
            })();
            if let Some((n, den)) = exact {
                return Number::ratio(n, den);
            }
        }
        Number::Float(self.to_f64() + o.to_f64()).checked()
    }

    fn neg(self) -> Number {
        match self {
            Number::Exact(n, d) => match n.checked_neg() {
                Some(m) => Number::Exact(m, d),
                None => Number::Float(-(n as f64) / d as f64),
            },
            Number::Float(x) => Number::Float(-x),
        }
    }

    fn sub(self, o: Number) -> CResult<Number> {
        self.add(o.neg())
    }

    fn mul(self, o: Number) -> CResult<Number> {
        if let (Number::Exact(a, b), Number::Exact(c, d)) = (self, o) {
            // Cross-reduce first so products stay small.
            let g1 = gcd(a, d).max(1);
            let g2 = gcd(c, b).max(1);
            let exact = (|| Some(((a / g1).checked_mul(c / g2)?, (b / g2).checked_mul(d / g1)?)))();
            if let Some((n, den)) = exact {
                return Number::ratio(n, den);
            }
        }
        Number::Float(self.to_f64() * o.to_f64()).checked()
    }

    fn div(self, o: Number) -> CResult<Number> {
        if o.to_f64() == 0.0 {
            return err("division by zero");
        }
        match o {
            Number::Exact(c, d) => self.mul(Number::ratio(d, c)?),
            Number::Float(x) => Number::Float(self.to_f64() / x).checked(),
        }
    }

    fn rem(self, o: Number) -> CResult<Number> {
        if o.to_f64() == 0.0 {
            return err("remainder by zero");
        }
        if let (Number::Exact(..), Number::Exact(..)) = (self, o) {
            // a - b * trunc(a / b), exact.
            let q = self.div(o)?;
            if let Number::Exact(n, d) = q {
                return self.sub(o.mul(Number::int(n / d))?);
            }
        }
        Number::Float(self.to_f64() % o.to_f64()).checked()
    }

    fn pow(self, o: Number) -> CResult<Number> {
        if let (Number::Exact(n, d), Some(k)) = (self, o.as_integer())
            && k.unsigned_abs() <= 4096
        {
            let exact = (|| {
                let e = u32::try_from(k.unsigned_abs()).ok()?;
                Some((n.checked_pow(e)?, d.checked_pow(e)?))
            })();
            if let Some((a, b)) = exact {
                return if k >= 0 {
                    Number::ratio(a, b)
                } else {
                    Number::ratio(b, a)
                };
            }
        }
        let (b, e) = (self.to_f64(), o.to_f64());
        if b < 0.0 && e.fract() != 0.0 {
            return err("a negative number to a fractional power is not a real number");
        }
        Number::Float(b.powf(e)).checked()
    }

    fn sqrt(self) -> CResult<Number> {
        if self.to_f64() < 0.0 {
            return err("the square root of a negative number is not a real number");
        }
        if let Number::Exact(n, d) = self
            && let (Some(a), Some(b)) = (int_root(n, 2), int_root(d, 2))
        {
            return Number::ratio(a, b);
        }
        Ok(Number::Float(self.to_f64().sqrt()))
    }

    fn cbrt(self) -> CResult<Number> {
        if let Number::Exact(n, d) = self {
            let (neg, m) = (n < 0, n.unsigned_abs());
            if let (Some(a), Some(b)) = (
                i128::try_from(m).ok().and_then(|m| int_root(m, 3)),
                int_root(d, 3),
            ) {
                return Number::ratio(if neg { -a } else { a }, b);
            }
        }
        Ok(Number::Float(self.to_f64().cbrt()))
    }

    fn round_to(
        self,
        digits: i128,
        how: fn(f64) -> f64,
        exact: fn(i128, i128) -> i128,
    ) -> CResult<Number> {
        if !(-30..=30).contains(&digits) {
            return err("round takes between -30 and 30 decimal places");
        }
        let scale = Number::int(10).pow(Number::int(digits))?;
        match self.mul(scale)? {
            Number::Exact(n, d) => Number::int(exact(n, d)).div(scale),
            Number::Float(x) => Number::Float(how(x) / scale.to_f64()).checked(),
        }
    }
}

/// `x^(1/k)` when `x ≥ 0` is a perfect `k`-th power.
fn int_root(x: i128, k: u32) -> Option<i128> {
    if x < 0 {
        return None;
    }
    let guess = (x as f64).powf(1.0 / f64::from(k)).round() as i128;
    (guess.saturating_sub(1)..=guess.saturating_add(1))
        .find(|&r| r >= 0 && r.checked_pow(k) == Some(x))
}

/// Rounds a float to a whole number.
type FloatRound = fn(f64) -> f64;
/// Rounds `n / d` to a whole number.
type ExactRound = fn(i128, i128) -> i128;

fn floor_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d)
}

fn ceil_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)
}

fn trunc_div(n: i128, d: i128) -> i128 {
    n / d
}

fn round_half_away(n: i128, d: i128) -> i128 {
    let q = n / d;
    let twice = (n % d).unsigned_abs() * 2;
    if twice >= d.unsigned_abs() {
        q + n.signum()
    } else {
        q
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Number::Exact(n, 1) => write!(f, "{n}"),
            Number::Exact(n, d) => {
                // Terminating decimals are written exactly.
                let mut rest = d;
                for p in [2, 5] {
                    while rest % p == 0 {
                        rest /= p;
                    }
                }
                if rest == 1 {
                    let mut digits = 0u32;
                    while 10i128.checked_pow(digits).is_some_and(|s| s % d != 0) {
                        digits += 1;
                    }
                    if let Some(scaled) = 10i128
                        .checked_pow(digits)
                        .and_then(|s| n.checked_mul(s / d))
                    {
                        let s = 10i128.pow(digits);
                        let sign = if scaled < 0 { "-" } else { "" };
                        let a = scaled.unsigned_abs();
                        let s = s.unsigned_abs();
                        return write!(f, "{sign}{}.{:0w$}", a / s, a % s, w = digits as usize);
                    }
                }
                write!(f, "{n}/{d} ≈ {}", float_text(n as f64 / d as f64))
            }
            Number::Float(x) => f.write_str(&float_text(x)),
        }
    }
}

/// `x` with 12 significant digits, trailing zeros dropped.
fn float_text(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-6..15).contains(&mag) {
        let s = format!("{x:.11e}");
        return match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        };
    }
    let decimals = (11 - mag).max(0) as usize;
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" { "0".into() } else { s }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Number),
    Ident(String),
    Op(char),
    LParen,
    RParen,
    Comma,
}

fn lex(src: &str) -> CResult<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    // Whether each open parenthesis opened a function's arguments.
    let mut calls: Vec<bool> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '0'..='9' | '.' => {
                let in_call = calls.last().copied().unwrap_or(false);
                let (n, next) = lex_number(&chars, i, !in_call)?;
                out.push(Tok::Num(n));
                i = next;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_')
                {
                    i += 1;
                }
                let word: String = chars
                    .get(start..i)
                    .unwrap_or_default()
                    .iter()
                    .collect::<String>()
                    .to_lowercase();
                out.push(Tok::Ident(word));
            }
            '(' => {
                calls.push(matches!(out.last(), Some(Tok::Ident(_))));
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                calls.pop();
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push(Tok::Op('^'));
                i += 2;
            }
            '+' | '-' | '*' | '/' | '^' | '%' | '!' => {
                out.push(Tok::Op(c));
                i += 1;
            }
            '−' | '–' => {
                out.push(Tok::Op('-'));
                i += 1;
            }
            '×' | '·' => {
                out.push(Tok::Op('*'));
                i += 1;
            }
            '√' => {
                out.push(Tok::Op('√'));
                i += 1;
            }
            '÷' => {
                out.push(Tok::Op('/'));
                i += 1;
            }
            '=' | '?'
                if chars
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .all(|c| c.is_whitespace() || *c == '?') =>
            {
                // A trailing "=" or "?" as people write it.
                break;
            }
            _ => return err(format!("unexpected character '{c}' at position {}", i + 1)),
        }
    }
    Ok(out)
}

/// A decimal literal at `chars[i..]`; `,ddd` groups are thousands
/// separators when `groups` (outside function arguments).
fn lex_number(chars: &[char], mut i: usize, groups: bool) -> CResult<(Number, usize)> {
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    let digit_at = |i: usize| chars.get(i).copied().filter(char::is_ascii_digit);
    let mut int = String::new();
    while let Some(d) = digit_at(i) {
        int.push(d);
        i += 1;
        if groups
            && chars.get(i) == Some(&',')
            && (1..=3).all(|k| digit(i + k))
            && !digit(i + 4)
            && (int.len() <= 3 || int.contains('_'))
        {
            int.push('_');
            i += 1;
        }
    }
    let int: String = int.chars().filter(|c| *c != '_').collect();
    let mut frac = String::new();
    if chars.get(i) == Some(&'.') {
        i += 1;
        while let Some(d) = digit_at(i) {
            frac.push(d);
            i += 1;
        }
    }
    if int.is_empty() && frac.is_empty() {
        return err("a '.' without digits");
    }
    let mut exp: i64 = 0;
    if matches!(chars.get(i), Some('e' | 'E'))
        && (digit(i + 1) || (matches!(chars.get(i + 1), Some('+' | '-')) && digit(i + 2)))
    {
        i += 1;
        let mut s = String::new();
        if let Some(&c @ ('+' | '-')) = chars.get(i) {
            s.push(c);
            i += 1;
        }
        while let Some(d) = digit_at(i) {
            s.push(d);
            i += 1;
        }
        exp = s
            .parse()
            .map_err(|_| CalcError(format!("exponent '{s}' is out of range")))?;
    }
    let text = format!("{int}.{frac}e{exp}");
    let digits = format!("{int}{frac}");
    let exp10 = exp - frac.len() as i64;
    let exact = (|| {
        let m: i128 = digits
            .trim_start_matches('0')
            .parse()
            .or_else(|_| {
                if digits.chars().all(|c| c == '0') {
                    Ok(0)
                } else {
                    Err(())
                }
            })
            .ok()?;
        let p = 10i128.checked_pow(u32::try_from(exp10.unsigned_abs()).ok()?)?;
        if exp10 >= 0 {
            Some(Number::Exact(m.checked_mul(p)?, 1))
        } else {
            Number::ratio(m, p).ok()
        }
    })();
    let n = match exact {
        Some(n) => n,
        None => Number::Float(
            text.parse::<f64>()
                .map_err(|_| CalcError(format!("'{digits}' is not a number")))?,
        )
        .checked()?,
    };
    Ok((n, i))
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k)
    }

    fn enter(&mut self) -> CResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            ));
        }
        Ok(())
    }

    fn starts_operand(t: Option<&Tok>) -> bool {
        match t {
            Some(Tok::Num(_) | Tok::LParen) => true,
            Some(Tok::Ident(w)) => w != "of" && w != "mod",
            _ => false,
        }
    }

    fn expr(&mut self) -> CResult<Number> {
        self.enter()?;
        let mut v = self.term()?;
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    v = v.add(self.term()?)?;
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    v = v.sub(self.term()?)?;
                }
                _ => break,
            }
        }
        self.depth -= 1;
        Ok(v)
    }

    fn term(&mut self) -> CResult<Number> {
        let mut v = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op(c @ ('*' | '/' | '%'))) => *c,
                Some(Tok::Ident(w)) if w == "of" => '*',
                Some(Tok::Ident(w)) if w == "mod" => '%',
                _ => break,
            };
            self.pos += 1;
            let rhs = self.unary()?;
            v = match op {
                '*' => v.mul(rhs)?,
                '/' => v.div(rhs)?,
                _ => v.rem(rhs)?,
            };
        }
        Ok(v)
    }

    fn unary(&mut self) -> CResult<Number> {
        match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.enter()?;
                let v = self.unary()?.neg();
                self.depth -= 1;
                Ok(v)
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.enter()?;
                let v = self.unary()?;
                self.depth -= 1;
                Ok(v)
            }
            Some(Tok::Op('√')) => {
                self.pos += 1;
                self.enter()?;
                let v = self.unary()?.sqrt()?;
                self.depth -= 1;
                Ok(v)
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> CResult<Number> {
        let base = self.postfix()?;
        if self.peek() == Some(&Tok::Op('^')) {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return base.pow(e);
        }
        Ok(base)
    }

    fn postfix(&mut self) -> CResult<Number> {
        let mut v = self.primary()?;
        loop {
            match self.peek() {
                // `x%` is percent unless an operand follows (then `%` is remainder).
                Some(Tok::Op('%')) if !Self::starts_operand(self.peek_at(1)) => {
                    self.pos += 1;
                    v = v.div(Number::int(100))?;
                }
                Some(Tok::Op('!')) => {
                    self.pos += 1;
                    v = factorial(v)?;
                }
                _ => return Ok(v),
            }
        }
    }

    fn primary(&mut self) -> CResult<Number> {
        let tok = self.peek().cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(n)) => Ok(n),
            Some(Tok::LParen) => {
                let v = self.expr()?;
                self.expect_close()?;
                Ok(v)
            }
            Some(Tok::Ident(name)) => {
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let mut args = vec![self.expr()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                        args.push(self.expr()?);
                    }
                    self.expect_close()?;
                    call(&name, &args)
                } else {
                    constant(&name)
                }
            }
            Some(Tok::Op(c)) => err(format!("'{c}' where a number was expected")),
            Some(Tok::RParen) => err("')' where a number was expected"),
            Some(Tok::Comma) => err("',' where a number was expected"),
            None => err("the expression ends where a number was expected"),
        }
    }

    fn expect_close(&mut self) -> CResult<()> {
        if self.peek() == Some(&Tok::RParen) {
            self.pos += 1;
            Ok(())
        } else {
            err("a '(' is not closed")
        }
    }
}

fn factorial(v: Number) -> CResult<Number> {
    let Some(n) = v.as_integer().filter(|n| *n >= 0) else {
        return err("factorial takes a whole number ≥ 0");
    };
    if n > 170 {
        return err("factorial of more than 170 is too large");
    }
    let mut acc = Number::int(1);
    for k in 2..=n {
        acc = acc.mul(Number::int(k))?;
    }
    Ok(acc)
}

fn constant(name: &str) -> CResult<Number> {
    match name {
        "pi" | "π" => Ok(Number::Float(std::f64::consts::PI)),
        "tau" => Ok(Number::Float(std::f64::consts::TAU)),
        "e" => Ok(Number::Float(std::f64::consts::E)),
        _ => err(format!("unknown name '{name}' (constants: pi, e, tau)")),
    }
}

fn call(name: &str, args: &[Number]) -> CResult<Number> {
    let arity = |lo: usize, hi: usize| -> CResult<()> {
        if (lo..=hi).contains(&args.len()) {
            Ok(())
        } else if lo == hi {
            err(format!("{name} takes {lo} argument(s), got {}", args.len()))
        } else {
            err(format!(
                "{name} takes {lo} to {hi} arguments, got {}",
                args.len()
            ))
        }
    };
    let x = args.first().copied().unwrap_or(Number::int(0));
    let f = x.to_f64();
    let float = |y: f64| Number::Float(y).checked();
    let positive = |what: &str| -> CResult<()> {
        if f <= 0.0 {
            err(format!("{what} of a number ≤ 0 is undefined"))
        } else {
            Ok(())
        }
    };
    match name {
        "sqrt" => {
            arity(1, 1)?;
            x.sqrt()
        }
        "cbrt" => {
            arity(1, 1)?;
            x.cbrt()
        }
        "abs" => {
            arity(1, 1)?;
            Ok(if f < 0.0 { x.neg() } else { x })
        }
        "exp" => {
            arity(1, 1)?;
            float(f.exp())
        }
        "ln" => {
            arity(1, 1)?;
            positive("ln")?;
            float(f.ln())
        }
        "log" | "log10" | "log2" => {
            arity(1, if name == "log" { 2 } else { 1 })?;
            positive("log")?;
            let base = match (name, args.get(1)) {
                ("log2", _) => Number::int(2),
                (_, Some(b)) => *b,
                _ => Number::int(10),
            };
            // Exact for integer powers of an integer base.
            if let (Some(b), Some(v)) = (base.as_integer(), x.as_integer())
                && b > 1
                && v > 0
            {
                let mut k = 0i128;
                let mut p = 1i128;
                while p < v {
                    match p.checked_mul(b) {
                        Some(q) => p = q,
                        None => break,
                    }
                    k += 1;
                }
                if p == v {
                    return Ok(Number::int(k));
                }
            }
            let b = base.to_f64();
            if b <= 0.0 || b == 1.0 {
                return err("log's base must be > 0 and not 1");
            }
            float(f.ln() / b.ln())
        }
        "round" | "floor" | "ceil" | "trunc" => {
            arity(1, if name == "round" { 2 } else { 1 })?;
            let digits = match args.get(1) {
                Some(d) => d.as_integer().ok_or_else(|| {
                    CalcError("round's second argument is a whole number of decimals".into())
                })?,
                None => 0,
            };
            let (how, exact): (FloatRound, ExactRound) = match name {
                "round" => (f64::round, round_half_away),
                "floor" => (f64::floor, floor_div),
                "ceil" => (f64::ceil, ceil_div),
                _ => (f64::trunc, trunc_div),
            };
            x.round_to(digits, how, exact)
        }
        "min" | "max" => {
            if args.is_empty() {
                return err(format!("{name} takes at least one argument"));
            }
            let mut best = x;
            for &a in args.iter().skip(1) {
                let better = if name == "min" {
                    a.to_f64() < best.to_f64()
                } else {
                    a.to_f64() > best.to_f64()
                };
                if better {
                    best = a;
                }
            }
            Ok(best)
        }
        "pow" => {
            arity(2, 2)?;
            match args.get(1) {
                Some(&y) => x.pow(y),
                None => err("pow takes 2 arguments"),
            }
        }
        "sin" | "cos" | "tan" | "asin" | "acos" | "atan" => {
            arity(1, 1)?;
            let y = match name {
                "sin" => f.sin(),
                "cos" => f.cos(),
                "tan" => f.tan(),
                "asin" => f.asin(),
                "acos" => f.acos(),
                _ => f.atan(),
            };
            if y.is_nan() {
                return err(format!("{name}({}) is undefined", x));
            }
            float(y)
        }
        _ => err(format!(
            "unknown function '{name}' (functions: sqrt or √, cbrt, abs, exp, ln, log, log10, log2, round, floor, ceil, trunc, min, max, pow, sin, cos, tan, asin, acos, atan)"
        )),
    }
}

/// Evaluates an arithmetic expression.
pub fn evaluate(expression: &str) -> Result<Number, CalcError> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return err(format!(
            "the expression is {} bytes; at most {MAX_EXPRESSION_BYTES} are accepted",
            expression.len()
        ));
    }
    let toks = lex(expression)?;
    if toks.is_empty() {
        return err("the expression is empty");
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let v = p.expr()?;
    match p.peek() {
        None => v.checked(),
        Some(t) => err(format!(
            "unexpected {} after a complete expression",
            describe(t)
        )),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Ident(w) => format!("'{w}'"),
        Tok::Op(c) => format!("'{c}'"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')' (no '(' opened it)".into(),
        Tok::Comma => "','".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(s: &str) -> String {
        match evaluate(s) {
            Ok(n) => n.to_string(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn the_issue_example_is_exact() {
        assert_eq!(eval("17.5% of 2,340 + sqrt(144)"), "421.5");
        assert_eq!(eval("17.5% * 2340 + sqrt(144)"), "421.5");
        assert_eq!(eval("0.175 × 2340 + √144"), "421.5");
        assert_eq!(eval("2,340 * 17.5 / 100 + 144^0.5"), "421.5");
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3"), "7");
        assert_eq!(eval("(1 + 2) * 3"), "9");
        assert_eq!(eval("2 ^ 3 ^ 2"), "512");
        assert_eq!(eval("-2^2"), "-4");
        assert_eq!(eval("2^-2"), "0.25");
        assert_eq!(eval("10 − 4 ÷ 2"), "8");
        assert_eq!(eval("7 % 3"), "1");
        assert_eq!(eval("-7 mod 3"), "-1");
        assert_eq!(eval("50%"), "0.5");
        assert_eq!(eval("5!"), "120");
        assert_eq!(eval("2**10"), "1024");
        assert_eq!(eval("1/3"), "1/3 ≈ 0.333333333333");
        assert_eq!(eval("0.1 + 0.2"), "0.3");
        assert_eq!(eval("1e3 + 1.5e-1"), "1000.15");
        assert_eq!(eval("what = ?".replace("what", "3*4").as_str()), "12");
    }

    #[test]
    fn functions() {
        assert_eq!(eval("sqrt(2)"), "1.41421356237");
        assert_eq!(eval("cbrt(-27)"), "-3");
        assert_eq!(eval("log(1000)"), "3");
        assert_eq!(eval("log(8, 2)"), "3");
        assert_eq!(eval("log2(1024)"), "10");
        assert_eq!(eval("ln(e)"), "1");
        assert_eq!(eval("round(2.5)"), "3");
        assert_eq!(eval("round(-2.5)"), "-3");
        assert_eq!(eval("round(3.14159, 2)"), "3.14");
        assert_eq!(eval("floor(-1.5) + ceil(1.2)"), "0");
        assert_eq!(
            eval("max(1, 2,5, 3)"),
            "5",
            "inside arguments a comma separates"
        );
        assert_eq!(eval("min(4, -1)"), "-1");
        assert_eq!(eval("abs(-3/4)"), "0.75");
        assert_eq!(eval("pow(2, 0.5)"), "1.41421356237");
        assert_eq!(eval("cos(0) + sin(0)"), "1");
        assert_eq!(eval("2 * pi"), "6.28318530718");
        assert_eq!(eval("exp(0)"), "1");
    }

    #[test]
    fn errors_are_clear_and_nothing_is_evaluated_as_code() {
        assert_eq!(eval("1/0"), "error: division by zero");
        assert_eq!(
            eval("sqrt(-1)"),
            "error: the square root of a negative number is not a real number"
        );
        assert!(eval("import os").starts_with("error: unknown name 'import'"));
        assert!(
            eval("__import__('os').system('ls')").starts_with("error: unexpected character '''")
        );
        assert!(eval("foo(1)").starts_with("error: unknown function 'foo'"));
        assert_eq!(eval("(1 + 2"), "error: a '(' is not closed");
        assert!(eval("1 + 2)").starts_with("error: unexpected ')'"));
        assert_eq!(eval(""), "error: the expression is empty");
        assert_eq!(
            eval("1 +"),
            "error: the expression ends where a number was expected"
        );
        assert!(eval(&"(".repeat(100)).contains("nests deeper"));
        assert!(eval(&"1+".repeat(1500)).contains("at most 2000"));
        assert!(eval("171!").contains("too large"));
        assert!(eval("10^400").starts_with("error: the result is not a finite"));
        assert!(eval("(-8)^(1/3)").contains("not a real number"));
    }

    #[test]
    fn big_values_fall_back_to_floats() {
        assert_eq!(eval("2^100"), "1267650600228229401496703205376");
        assert_eq!(eval("2^200"), "1.60693804426e60");
        assert_eq!(eval("99999999999999999999 * 99999999999999999999"), "1e40");
    }
}

import { PlainCopies, PlainHolder } from './plain-copies';

class Holder implements PlainHolder {
  dropped = 0;
  dropPlain(): void {
    this.dropped++;
  }
}

describe(PlainCopies.name, () => {
  it('keeps copies within the room the entries leave, never less than the reserve, oldest out first', () => {
    let room = 250;
    const copies = new PlainCopies(100, () => room);
    const [a, b, c] = [new Holder(), new Holder(), new Holder()];
    expect(copies.add(a, 100)).toBe(true);
    expect(copies.add(b, 100)).toBe(true);
    expect(copies.add(c, 100)).toBe(true);
    // 300 > 250: the oldest went
    expect([a.dropped, b.dropped, c.dropped, copies.bytes, copies.entries]).toEqual([1, 0, 0, 200, 2]);
    room = 0;
    copies.trim();
    expect([b.dropped, c.dropped, copies.bytes]).toEqual([1, 0, 100]);
  });

  it('keeps nothing larger than its budget, and forgets a copy its holder let go', () => {
    const copies = new PlainCopies(100, () => 0);
    const a = new Holder();
    expect(copies.add(a, 101)).toBe(false);
    expect(copies.bytes).toBe(0);
    expect(copies.add(a, 60)).toBe(true);
    copies.forget(a);
    expect([copies.bytes, copies.entries, a.dropped]).toEqual([0, 0, 0]);
  });

  it('counts a holder once when it adds a new copy', () => {
    const copies = new PlainCopies(1000, () => 0);
    const a = new Holder();
    copies.add(a, 300);
    copies.add(a, 200);
    expect([copies.bytes, copies.entries]).toEqual([200, 1]);
    copies.clear();
    expect([copies.bytes, a.dropped]).toEqual([0, 1]);
  });
});

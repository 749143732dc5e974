import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CompactTree,
  EMPTY_ROOT,
  leafHash,
  MerkleTree,
  nodeHash,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
} from './merkle.ts';

/** MTH straight from RFC 9162 2.1.1, over the leaf hashes, to check the fast trees against. */
function referenceRoot(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0]!;
  const k = splitPoint(leaves.length);
  return nodeHash(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

const leavesOf = (n: number): Buffer[] => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));

function treeOf(n: number): MerkleTree {
  const tree = new MerkleTree();
  for (const leaf of leavesOf(n)) tree.append(leaf);
  return tree;
}

const flip = (b: Buffer): Buffer => {
  const c = Buffer.from(b);
  c[0] = c[0]! ^ 1;
  return c;
};

describe('hashing (RFC 9162 2.1.1)', () => {
  it('prefixes leaves with 0x00 and nodes with 0x01', () => {
    const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
    expect(leafHash(Buffer.from('a'))).toEqual(sha(Buffer.from([0]), Buffer.from('a')));
    const l = leafHash(Buffer.from('a'));
    const r = leafHash(Buffer.from('b'));
    expect(nodeHash(l, r)).toEqual(sha(Buffer.from([1]), l, r));
    expect(EMPTY_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('splits at the largest power of two smaller than n', () => {
    expect([2, 3, 4, 5, 8, 9, 1000].map(splitPoint)).toEqual([1, 2, 2, 4, 4, 8, 512]);
  });

  it('matches the RFC 6962 test vector root of the 8-leaf reference tree', () => {
    // The leaves of certificate-transparency-go's merkle test data: "", 00, 10, 2021, 3031, 40414243, ...
    const inputs = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
    const tree = new MerkleTree();
    for (const hex of inputs) tree.append(leafHash(Buffer.from(hex, 'hex')));
    expect(tree.root().toString('hex')).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    expect(tree.root(1).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
  });
});

describe('CompactTree and MerkleTree', () => {
  it('give the reference root for every size up to 70', () => {
    const leaves = leavesOf(70);
    const compact = new CompactTree();
    const full = new MerkleTree();
    expect(compact.root()).toEqual(EMPTY_ROOT);
    for (let n = 1; n <= 70; n++) {
      compact.append(leaves[n - 1]!);
      full.append(leaves[n - 1]!);
      const expected = referenceRoot(leaves.slice(0, n));
      expect(compact.root()).toEqual(expected);
      expect(full.root()).toEqual(expected);
      expect(full.root(Math.ceil(n / 2))).toEqual(referenceRoot(leaves.slice(0, Math.ceil(n / 2))));
    }
    expect(compact.size).toBe(70);
  });
});

describe('inclusion proofs (property)', () => {
  const sizeAndIndex = fc
    .integer({ min: 1, max: 300 })
    .chain((size) => fc.record({ size: fc.constant(size), index: fc.integer({ min: 0, max: size - 1 }) }));

  it('every proof verifies, and fails for a changed leaf, a wrong index or size, a wrong root', () => {
    const tree = treeOf(300);
    fc.assert(
      fc.property(sizeAndIndex, ({ size, index }) => {
        const proof = tree.inclusionProof(index, size);
        const root = tree.root(size);
        const leaf = tree.leaf(index);
        expect(verifyInclusion(leaf, index, size, proof, root)).toBe(true);
        expect(verifyInclusion(flip(leaf), index, size, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, index, size, proof, flip(root))).toBe(false);
        // A wrong size is caught by the root it must then reach (a signed checkpoint binds size and root together).
        if (size < tree.size) expect(verifyInclusion(leaf, index, size + 1, proof, tree.root(size + 1))).toBe(false);
        if (size - 1 > index) expect(verifyInclusion(leaf, index, size - 1, proof, tree.root(size - 1))).toBe(false);
        if (size > 1) expect(verifyInclusion(leaf, (index + 1) % size, size, proof, root)).toBe(false);
        if (proof.length > 0) {
          const bent = proof.map((p, i) => (i === proof.length - 1 ? flip(p) : p));
          expect(verifyInclusion(leaf, index, size, bent, root)).toBe(false);
          expect(verifyInclusion(leaf, index, size, proof.slice(0, -1), root)).toBe(false);
        }
        expect(verifyInclusion(leaf, index, size, [...proof, leaf], root)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

describe('consistency proofs (property)', () => {
  const sizes = fc
    .integer({ min: 1, max: 300 })
    .chain((second) => fc.record({ second: fc.constant(second), first: fc.integer({ min: 1, max: second }) }));

  it('every proof verifies, and fails for a wrong old or new root, a wrong size, a bent hash', () => {
    const tree = treeOf(300);
    fc.assert(
      fc.property(sizes, ({ first, second }) => {
        const proof = tree.consistencyProof(first, second);
        const r1 = tree.root(first);
        const r2 = tree.root(second);
        expect(verifyConsistency(first, second, r1, r2, proof)).toBe(true);
        expect(verifyConsistency(first, second, flip(r1), r2, proof)).toBe(false);
        expect(verifyConsistency(first, second, r1, flip(r2), proof)).toBe(false);
        if (first < second) {
          if (second < tree.size) {
            expect(verifyConsistency(first, second + 1, r1, tree.root(second + 1), proof)).toBe(false);
          }
          expect(verifyConsistency(first, second, r1, tree.root(second - 1), proof)).toBe(false);
          const bent = proof.map((p, i) => (i === 0 ? flip(p) : p));
          expect(verifyConsistency(first, second, r1, r2, bent)).toBe(false);
          expect(verifyConsistency(first, second, r1, r2, proof.slice(1))).toBe(false);
        }
        if (first > 1 && first < second) {
          expect(verifyConsistency(first - 1, second, tree.root(first - 1), r2, proof)).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('an edited leaf below the old size breaks consistency with the old root', () => {
    const leaves = leavesOf(40);
    const tampered = new MerkleTree();
    leaves.forEach((leaf, i) => {
      tampered.append(i === 7 ? flip(leaf) : leaf);
    });
    const honest = treeOf(40);
    const proof = tampered.consistencyProof(20, 40);
    expect(verifyConsistency(20, 40, honest.root(20), tampered.root(40), proof)).toBe(false);
  });
});
